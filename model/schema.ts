/**
 * The world's shape, declared once with bounded sizes (as Promela declares
 * `byte host[P]`), so that one step function can run on two backends:
 * - a packed view: accessors over a fixed byte buffer, for the engine's hot loop;
 * - a plain object (or an immer draft of it), for replay, traces and tests.
 * Every cell is a byte: kernel models are scaled down (H=2 rather than 9),
 * so frame numbers and counters stay small. `encode` rejects a value over
 * its field's maximum rather than letting it wrap.
 */
import { ModelError } from '../explorer/errors.js'
import type { Cells } from '../explorer/model.js'

/** An integer cell: unsigned 0..max (`u8`), or signed with a negative minimum (`i8`, `int`). It is stored in one byte. */
export interface IntField {
  readonly kind: 'int'
  readonly min: number
  readonly max: number
  /**
   * The field holds a thread's index plus this bias (`threadId`: 0, the
   * thread's own `tid`; `threadRef`: 1, a lock owner or a ghost naming a
   * thread, 0 = none). Symmetry reduction renames it with the threads.
   */
  readonly thread?: number
}
/** @deprecated the old name of `IntField` */
export type U8 = IntField
export interface ArrayField<F extends Field = Field> {
  readonly kind: 'array'
  readonly length: number
  readonly of: F
}
export interface StructField<R extends Fields = Fields> {
  readonly kind: 'struct'
  readonly fields: R
}
export type Field = IntField | ArrayField<any> | StructField<any>
export type Fields = Readonly<Record<string, Field>>

export type Value<F> = F extends IntField
  ? number
  : F extends ArrayField<infer E>
    ? Value<E>[]
    : F extends StructField<infer R>
      ? { -readonly [K in keyof R]: Value<R[K]> }
      : never
export type ValueOf<R extends Fields> = { -readonly [K in keyof R]: Value<R[K]> }

export const u8 = (max = 255): IntField => int(0, max)
/** A signed byte: -128..127 (a counter whose underflow is itself the bug shows its negative value in the trace). */
export const i8 = (min = -128, max = 127): IntField => int(min, max)
/**
 * An integer field with range min..max. One byte holds it: an unsigned range
 * within 0..255, or a signed one within -128..127 (two's complement).
 */
export function int(min: number, max: number): IntField {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) throw new RangeError(`int(${min}, ${max}): not a range`)
  if (min < 0 ? min < -128 || max > 127 : max > 255) {
    throw new RangeError(`int(${min}, ${max}): a field is one byte: 0..255 unsigned or -128..127 signed`)
  }
  return { kind: 'int', min, max }
}
/** A thread's own index (its `tid` local): renamed with the threads under symmetry reduction. */
export const threadId = (max = 255): IntField => ({ ...int(0, max), thread: 0 })
/** A thread's index + 1, 0 = none (a lock owner, the thread that used a freed region): renamed with the threads under symmetry reduction. */
export const threadRef = (max = 255): IntField => ({ ...int(0, max), thread: 1 })
/**
 * The field with every thread-id cell's range cut to the program's
 * `threads` (a `threadId` holds 0..threads-1, a `threadRef` 0..threads):
 * no other value names a thread, and the bit-packed state then spends 3
 * bits, not 8, on a lock owner of five threads. Applied by compile.
 */
export function boundThreadIds<F extends Field>(f: F, threads: number): F {
  switch (f.kind) {
    case 'int':
      return (f.thread === undefined ? f : { ...f, max: Math.min(f.max, threads - 1 + f.thread) }) as F
    case 'array':
      return { ...f, of: boundThreadIds(f.of, threads) } as F
    case 'struct':
      return { ...f, fields: Object.fromEntries(Object.entries(f.fields as Fields).map(([k, g]) => [k, boundThreadIds(g, threads)])) } as F
  }
  return f
}
export const array = <F extends Field>(length: number, of: F): ArrayField<F> => ({ kind: 'array', length, of })
export const struct = <R extends Fields>(fields: R): StructField<R> => ({ kind: 'struct', fields })

export function sizeOf(f: Field): number {
  switch (f.kind) {
    case 'int':
      return 1
    case 'array':
      return f.length * sizeOf(f.of)
    case 'struct':
      return Object.values(f.fields as Fields).reduce((n, g) => n + sizeOf(g), 0)
  }
}

/** Every cell of the shape in layout order: its path, its range and, for a thread id, its bias. */
export function cells(f: Field, path: string): { path: string; min: number; max: number; thread?: number }[] {
  switch (f.kind) {
    case 'int':
      return [f.thread === undefined ? { path, min: f.min, max: f.max } : { path, min: f.min, max: f.max, thread: f.thread }]
    case 'array':
      return Array.from({ length: f.length }, (_, i) => cells(f.of, `${path}[${i}]`)).flat()
    case 'struct':
      return Object.entries(f.fields as Fields).flatMap(([k, g]) => cells(g, path ? `${path}.${k}` : k))
  }
}

/** A zero value of the shape, as a plain object. */
export function zero<F extends Field>(f: F): Value<F> {
  return decode(f, new Int16Array(sizeOf(f)), 0) as Value<F>
}

export function decode(f: Field, buf: Cells, off: number): unknown {
  switch (f.kind) {
    case 'int':
      return buf[off]
    case 'array': {
      const size = sizeOf(f.of)
      return Array.from({ length: f.length }, (_, i) => decode(f.of, buf, off + i * size))
    }
    case 'struct': {
      const out: Record<string, unknown> = {}
      for (const [k, g] of Object.entries(f.fields as Fields)) {
        out[k] = decode(g, buf, off)
        off += sizeOf(g)
      }
      return out
    }
  }
}

export function encode(f: Field, v: unknown, buf: Cells, off: number, path: string): void {
  switch (f.kind) {
    case 'int': {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) {
        throw new RangeError(`${path} = ${String(v)} is not an integer in ${f.min}..${f.max}`)
      }
      buf[off] = v
      return
    }
    case 'array': {
      const a = v as unknown[]
      if (!Array.isArray(a) || a.length !== f.length) throw new RangeError(`${path} is not an array of ${f.length}`)
      const size = sizeOf(f.of)
      for (let i = 0; i < f.length; i++) encode(f.of, a[i], buf, off + i * size, `${path}[${i}]`)
      return
    }
    case 'struct': {
      const o = v as Record<string, unknown>
      for (const [k, g] of Object.entries(f.fields as Fields)) {
        encode(g, o[k], buf, off, path ? `${path}.${k}` : k)
        off += sizeOf(g)
      }
      return
    }
  }
}

/**
 * A live view of the shape over `buf` at `off`: reading and writing its
 * properties reads and writes the bytes. Byte arrays are `subarray`s; structs
 * are instances of one class per struct shape with prototype accessors, so
 * the step code that touches them stays monomorphic.
 */
export function view(f: Field, buf: Cells, off: number): unknown {
  switch (f.kind) {
    case 'int':
      throw new Error('view: a scalar has no view; read it through its parent')
    case 'array': {
      if (f.of.kind === 'int') return buf.subarray(off, off + f.length)
      const size = sizeOf(f.of)
      // Frozen: `w.slat[i] = {...}` would replace the view instead of writing the bytes; this makes it throw.
      return Object.freeze(Array.from({ length: f.length }, (_, i) => view(f.of, buf, off + i * size)))
    }
    case 'struct':
      return structView(f, buf, off)
  }
}

/**
 * Where a struct view keeps its bytes: own properties under names no field
 * may have (refused when a struct declares one), so that no field shadows
 * them. Plain string keys: symbol keys made every step ~20% slower.
 */
const RESERVED = ['$buf', '$off']
interface StructViewBase {
  readonly $buf: Cells
  readonly $off: number
}
const viewClasses = new WeakMap<StructField, new (b: Cells, o: number) => StructViewBase>()

function structView(f: StructField, buf: Cells, off: number): unknown {
  let C = viewClasses.get(f)
  if (!C) {
    const reserved = Object.keys(f.fields).find((k) => RESERVED.includes(k))
    if (reserved !== undefined) throw new ModelError(`field name '${reserved}' is reserved (a struct view keeps its bytes under it): rename the field`)
    C = class {
      constructor(
        readonly $buf: Cells,
        readonly $off: number,
      ) {
        let at = $off
        for (const [k, g] of Object.entries(f.fields as Fields)) {
          if (g.kind !== 'int') Object.defineProperty(this, k, { value: view(g, $buf, at), enumerable: true })
          at += sizeOf(g)
        }
      }
    }
    let at = 0
    for (const [k, g] of Object.entries(f.fields as Fields)) {
      if (g.kind === 'int') {
        const rel = at
        Object.defineProperty(C.prototype, k, {
          get(this: StructViewBase) {
            return this.$buf[this.$off + rel]
          },
          set(this: StructViewBase, v: number) {
            this.$buf[this.$off + rel] = v
          },
          enumerable: true,
        })
      }
      at += sizeOf(g)
    }
    viewClasses.set(f, C)
  }
  return new C(buf, off)
}
