/**
 * Growable SharedArrayBuffers (ES2024, in Node 20), typed here since the
 * project's TypeScript lib predates them. Views over one must be
 * fixed-length and re-made after it grows: V8's length-tracking views are
 * an order of magnitude slower.
 */
interface Growable {
  grow(bytes: number): void
  readonly maxByteLength: number
}

/** The largest growable SharedArrayBuffer Node 20 accepts. */
export const MAX_GROWABLE_BYTES = 2 ** 32

export function growableBuffer(bytes: number, maxBytes = MAX_GROWABLE_BYTES): SharedArrayBuffer {
  const Ctor = SharedArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => SharedArrayBuffer
  return new Ctor(bytes, { maxByteLength: maxBytes })
}

export const maxBytesOf = (buf: SharedArrayBuffer): number => (buf as unknown as Growable).maxByteLength

/** Grows `buf` to at least `bytes` (doubling, within its maximum); several threads may race to: the loser's grow is a no-op or throws, and is ignored when the buffer is big enough. */
export function growBuffer(buf: SharedArrayBuffer, bytes: number, multipleOf = 1): void {
  if (buf.byteLength >= bytes) return
  const max = maxBytesOf(buf)
  if (bytes > max) throw new RangeError(`shared buffer: ${bytes} bytes needed, at most ${max}`)
  const target = Math.min(Math.floor(max / multipleOf) * multipleOf, Math.max(bytes, Math.floor((buf.byteLength * 2) / multipleOf) * multipleOf))
  try {
    ;(buf as unknown as Growable).grow(target)
  } catch (e) {
    if (buf.byteLength < bytes) throw e
  }
}
