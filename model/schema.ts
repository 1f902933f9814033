/**
 * The world's shape, declared once with bounded sizes (as Promela declares
 * `byte host[P]`), so that one step function can run on two backends:
 * - a packed view: accessors over a fixed byte buffer, for the engine's hot loop;
 * - a plain object (or an immer draft of it), for replay, traces and tests.
 * Every cell is a byte: kernel models are scaled down (H=2 rather than 9),
 * so frame numbers and counters stay small. `encode` rejects a value over
 * its field's maximum rather than letting it wrap.
 */
import type { Cells } from '../explorer/model.js'

export interface U8 {
  readonly kind: 'u8'
  readonly max: number
}
export interface ArrayField<F extends Field = Field> {
  readonly kind: 'array'
  readonly length: number
  readonly of: F
}
export interface StructField<R extends Fields = Fields> {
  readonly kind: 'struct'
  readonly fields: R
}
export type Field = U8 | ArrayField<any> | StructField<any>
export type Fields = Readonly<Record<string, Field>>

export type Value<F> = F extends U8
  ? number
  : F extends ArrayField<infer E>
    ? Value<E>[]
    : F extends StructField<infer R>
      ? { -readonly [K in keyof R]: Value<R[K]> }
      : never
export type ValueOf<R extends Fields> = { -readonly [K in keyof R]: Value<R[K]> }

export const u8 = (max = 255): U8 => ({ kind: 'u8', max })
export const array = <F extends Field>(length: number, of: F): ArrayField<F> => ({ kind: 'array', length, of })
export const struct = <R extends Fields>(fields: R): StructField<R> => ({ kind: 'struct', fields })

export function sizeOf(f: Field): number {
  switch (f.kind) {
    case 'u8':
      return 1
    case 'array':
      return f.length * sizeOf(f.of)
    case 'struct':
      return Object.values(f.fields as Fields).reduce((n, g) => n + sizeOf(g), 0)
  }
}

/** Every cell of the shape in layout order: its path and its maximum. */
export function cells(f: Field, path: string): { path: string; max: number }[] {
  switch (f.kind) {
    case 'u8':
      return [{ path, max: f.max }]
    case 'array':
      return Array.from({ length: f.length }, (_, i) => cells(f.of, `${path}[${i}]`)).flat()
    case 'struct':
      return Object.entries(f.fields as Fields).flatMap(([k, g]) => cells(g, path ? `${path}.${k}` : k))
  }
}

/** A zero value of the shape, as a plain object. */
export function zero<F extends Field>(f: F): Value<F> {
  return decode(f, new Uint16Array(sizeOf(f)), 0) as Value<F>
}

export function decode(f: Field, buf: Cells, off: number): unknown {
  switch (f.kind) {
    case 'u8':
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
    case 'u8': {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > f.max) {
        throw new RangeError(`${path} = ${String(v)} is not an integer in 0..${f.max}`)
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
    case 'u8':
      throw new Error('view: a scalar has no view; read it through its parent')
    case 'array': {
      if (f.of.kind === 'u8') return buf.subarray(off, off + f.length)
      const size = sizeOf(f.of)
      // Frozen: `w.slat[i] = {...}` would replace the view instead of writing the bytes; this makes it throw.
      return Object.freeze(Array.from({ length: f.length }, (_, i) => view(f.of, buf, off + i * size)))
    }
    case 'struct':
      return structView(f, buf, off)
  }
}

interface StructViewBase {
  readonly b: Cells
  readonly o: number
}
const viewClasses = new WeakMap<StructField, new (b: Cells, o: number) => StructViewBase>()

function structView(f: StructField, buf: Cells, off: number): unknown {
  let C = viewClasses.get(f)
  if (!C) {
    C = class {
      constructor(
        readonly b: Cells,
        readonly o: number,
      ) {
        let at = o
        for (const [k, g] of Object.entries(f.fields as Fields)) {
          if (g.kind !== 'u8') Object.defineProperty(this, k, { value: view(g, b, at), enumerable: true })
          at += sizeOf(g)
        }
      }
    }
    let at = 0
    for (const [k, g] of Object.entries(f.fields as Fields)) {
      if (g.kind === 'u8') {
        const rel = at
        Object.defineProperty(C.prototype, k, {
          get(this: StructViewBase) {
            return this.b[this.o + rel]
          },
          set(this: StructViewBase, v: number) {
            this.b[this.o + rel] = v
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
