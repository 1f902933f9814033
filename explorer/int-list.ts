/**
 * A growable list of 32-bit integers in one typed array (doubling), for the
 * per-state and per-edge arrays of searches that keep the whole graph: a
 * plain `number[]` of millions costs several times the bytes.
 */
export class IntList {
  private data: Int32Array
  length = 0

  constructor(capacity = 1024) {
    this.data = new Int32Array(capacity)
  }

  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Int32Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = v
  }

  /** Removes and returns the last value (the list as a stack). */
  pop(): number {
    return this.data[--this.length]
  }

  get(i: number): number {
    return this.data[i]
  }

  /** The values, trimmed to `length` (a view, not a copy). */
  view(): Int32Array {
    return this.data.subarray(0, this.length)
  }
}
