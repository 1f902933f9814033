/**
 * Footprints for partial-order reduction, recorded rather than declared.
 * Step code sees the threads only through its own `me` (the world a step
 * gets has no `threads`), so no step can reach another thread's locals or
 * pc; the shared cells a step reads are recorded by re-running it on a view
 * that notes every access (`recordingView`), in the very state it is
 * expanded in. Properties do see `threads`, and each read of it is noted.
 */
import type { Cells } from '../explorer/model.js'
import { type Field, type Fields, sizeOf, type StructField } from './schema.js'

/** What a recording view noted: the cells read (each once, in first-read order) and whether any cell was written. */
export class Recorder {
  reads: number[] = []
  wrote = false
  private readonly seen: Uint32Array
  private stamp = 1

  constructor(cells: number) {
    this.seen = new Uint32Array(cells)
  }

  reset(): void {
    this.reads = []
    this.wrote = false
    if (++this.stamp === 0xffffffff) {
      this.seen.fill(0)
      this.stamp = 1
    }
  }

  read(cell: number): void {
    if (this.seen[cell] === this.stamp) return
    this.seen[cell] = this.stamp
    this.reads.push(cell)
  }

  /** Methods of an array (`fill`, `slice`, iteration) may read and write any of its cells. */
  readAll(from: number, to: number): void {
    for (let c = from; c < to; c++) this.read(c)
  }
}

/**
 * A view of shape `f` over `buf` at `off` with the same fields as
 * schema.ts's `view`, each access noted in `rec` (the cell read, or that a
 * write happened). Slower than `view`: only for re-running a step whose
 * footprint is wanted.
 */
export function recordingView(f: Field, buf: Cells, off: number, rec: Recorder): unknown {
  switch (f.kind) {
    case 'int':
      throw new Error('recordingView: a scalar has no view; read it through its parent')
    case 'array': {
      if (f.of.kind === 'int') return intArray(buf.subarray(off, off + f.length), off, rec)
      const size = sizeOf(f.of)
      return Object.freeze(Array.from({ length: f.length }, (_, i) => recordingView(f.of, buf, off + i * size, rec)))
    }
    case 'struct': {
      const out = {}
      let at = off
      for (const [k, g] of Object.entries((f as StructField).fields as Fields)) {
        const cell = at
        if (g.kind === 'int') {
          Object.defineProperty(out, k, {
            get() {
              rec.read(cell)
              return buf[cell]
            },
            set(v: number) {
              rec.wrote = true
              buf[cell] = v
            },
            enumerable: true,
          })
        } else {
          Object.defineProperty(out, k, { value: recordingView(g, buf, cell, rec), enumerable: true })
        }
        at += sizeOf(g)
      }
      return Object.freeze(out)
    }
  }
}

const READ_ONLY_METHODS = new Set<string | symbol>(['values', Symbol.iterator, 'entries', 'keys', 'at', 'indexOf', 'lastIndexOf', 'includes', 'slice', 'join', 'toString'])

/** An int array as a typed array behind a proxy: an index read notes its cell; anything else (a method, iteration) notes them all. */
function intArray(arr: Cells, off: number, rec: Recorder): Cells {
  const index = (p: string | symbol): number => (typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : -1)
  return new Proxy(arr, {
    get(target, p) {
      const i = index(p)
      if (i >= 0) {
        if (i < target.length) rec.read(off + i)
        return target[i]
      }
      if (p === 'length') return target.length
      const v = Reflect.get(target, p, target) as unknown
      if (typeof v !== 'function') {
        // The raw buffer would let a step write unseen.
        if (p === 'buffer') rec.wrote = true
        return v
      }
      // A method may read any element: say so, and run it on the array itself. Only those that can
      // neither write nor hand the array to a callback (which could write it) count as reads.
      rec.readAll(off, off + target.length)
      if (!READ_ONLY_METHODS.has(p)) rec.wrote = true
      return (v as (...a: unknown[]) => unknown).bind(target)
    },
    set(target, p, v) {
      rec.wrote = true
      const i = index(p)
      if (i >= 0) target[i] = v as number
      else Reflect.set(target, p, v, target)
      return true
    },
  })
}

/**
 * Gives `w` (a property's view of the world) a `threads` that notes each
 * read in `touched[0]`. The accessor goes on a prototype of `w`'s own: put
 * on `w` itself, the second view given one (with another getter) would be
 * turned into a dictionary by V8, and every field an invariant reads on it
 * into a slow lookup.
 */
export function recordThreads(w: object, threads: readonly unknown[], touched: Uint8Array): void {
  const proto = Object.create(Object.getPrototypeOf(w) as object, {
    threads: {
      get() {
        touched[0] = 1
        return threads
      },
    },
  }) as object
  Object.setPrototypeOf(w, proto)
}
