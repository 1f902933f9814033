/**
 * The world's shape: sizes, encode/decode round trips (fast-check), range
 * errors naming the field's path, and live views over the bytes.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { array, decode, encode, type Field, type Fields, sizeOf, struct, u8, view, zero } from '../../model/schema.js'

const shape = struct({
  a: u8(3),
  pages: array(3, u8()),
  threads: array(
    2,
    struct({
      pc: u8(9),
      regs: array(2, u8(1)),
      inner: struct({ z: u8(200) }),
    }),
  ),
  last: u8(255),
})

/** Counts the u8 cells of a shape, independently of sizeOf. */
function cells(f: Field): number {
  if (f.kind === 'int') return 1
  if (f.kind === 'array') return f.length * cells(f.of)
  return Object.values(f.fields as Fields).reduce((n, g) => n + cells(g), 0)
}

/** Values that fit a shape. */
function arb(f: Field): fc.Arbitrary<unknown> {
  if (f.kind === 'int') return fc.integer({ min: f.min, max: f.max })
  if (f.kind === 'array') return fc.array(arb(f.of), { minLength: f.length, maxLength: f.length })
  const rec: Record<string, fc.Arbitrary<unknown>> = {}
  for (const [k, g] of Object.entries(f.fields as Fields)) rec[k] = arb(g)
  return fc.record(rec)
}

/** A random shape (depth-limited). */
const arbShape: fc.Arbitrary<Field> = fc.letrec<{ field: Field }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: 0, max: 255 }).map((m) => u8(m)),
    fc.tuple(fc.integer({ min: 0, max: 4 }), tie('field')).map(([n, of]) => array(n, of)),
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('field'), { maxKeys: 4 }).map((r) => struct(r)),
  ),
})).field

describe('schema', () => {
  it('sizeOf counts one byte per cell', () => {
    expect(sizeOf(shape)).toBe(cells(shape))
    expect(sizeOf(shape)).toBe(1 + 3 + 2 * (1 + 2 + 1) + 1)
    fc.assert(fc.property(arbShape, (f) => sizeOf(f) === cells(f)))
  })

  it('zero is all zeros and encodes to zero bytes', () => {
    const z = zero(shape)
    expect(z.threads[1].inner.z).toBe(0)
    const b = new Int16Array(sizeOf(shape)).fill(7)
    encode(shape, z, b, 0, '')
    expect([...b].every((x) => x === 0)).toBe(true)
  })

  it('encode then decode is the identity, at any offset', () => {
    fc.assert(
      fc.property(
        arbShape.chain((f) => fc.tuple(fc.constant(f), arb(f), fc.nat(5))),
        ([f, v, off]) => {
          const b = new Int16Array(off + sizeOf(f) + 3).fill(0xee)
          encode(f, v, b, off, 'root')
          expect(decode(f, b, off)).toEqual(v)
          // nothing written outside [off, off + size)
          for (let i = 0; i < off; i++) expect(b[i]).toBe(0xee)
          for (let i = off + sizeOf(f); i < b.length; i++) expect(b[i]).toBe(0xee)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('decode then encode gives back the bytes (for bytes within every max)', () => {
    fc.assert(
      fc.property(arb(shape), (v) => {
        const b = new Int16Array(sizeOf(shape))
        encode(shape, v, b, 0, '')
        const again = new Int16Array(sizeOf(shape))
        encode(shape, decode(shape, b, 0), again, 0, '')
        expect([...again]).toEqual([...b])
      }),
    )
  })

  describe('encode rejects what does not fit, naming the field', () => {
    const good = () => structuredClone(zero(shape)) as any
    const fails = (mutate: (v: any) => void, path: RegExp, range?: RegExp) => {
      const v = good()
      mutate(v)
      const b = new Int16Array(sizeOf(shape))
      let err: unknown
      try {
        encode(shape, v, b, 0, '')
      } catch (e) {
        err = e
      }
      expect(err, 'encode throws').toBeInstanceOf(RangeError)
      expect((err as Error).message).toMatch(path)
      if (range) expect((err as Error).message).toMatch(range)
    }
    it('a top-level field above its max', () => fails((v) => (v.a = 4), /^a = 4\b/, /0\.\.3/))
    it('a top-level 0..255 field at 256', () => fails((v) => (v.last = 256), /^last = 256/, /0\.\.255/))
    it('a nested array cell', () => fails((v) => (v.threads[1].regs[0] = 2), /threads\[1\]\.regs\[0\] = 2/, /0\.\.1/))
    it('a nested struct field', () => fails((v) => (v.threads[0].inner.z = 201), /threads\[0\]\.inner\.z = 201/, /0\.\.200/))
    it('an array element of a byte array', () => fails((v) => (v.pages[2] = 300), /pages\[2\] = 300/))
    it('a negative value', () => fails((v) => (v.threads[0].pc = -1), /threads\[0\]\.pc = -1/))
    it('a non-integer', () => fails((v) => (v.a = 1.5), /^a = 1\.5/))
    it('a missing field', () => fails((v) => delete v.threads[1].pc, /threads\[1\]\.pc = undefined/))
    it('an array of the wrong length', () => fails((v) => v.pages.push(0), /pages is not an array of 3/))
    it('the path prefix given by the caller', () => {
      const b = new Int16Array(1)
      expect(() => encode(struct({ n: u8(2) }), { n: 3 }, b, 0, 'fault0')).toThrow(/fault0\.n = 3/)
    })
    it('every value above max, for every max', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 1000 }), (max, over) => {
          const b = new Int16Array(1)
          expect(() => encode(u8(max), max + over, b, 0, 'x')).toThrow(RangeError)
          encode(u8(max), max, b, 0, 'x')
          expect(b[0]).toBe(max)
        }),
      )
    })
  })

  it('views read and write the bytes in place', () => {
    fc.assert(
      fc.property(arb(shape), arb(shape), (v, w) => {
        const b = new Int16Array(sizeOf(shape) + 2)
        encode(shape, v, b, 1, '')
        const s = view(shape, b, 1) as any
        const want = v as any
        expect(s.a).toBe(want.a)
        expect([...s.pages]).toEqual(want.pages)
        expect(s.threads[1].inner.z).toBe(want.threads[1].inner.z)
        expect([...s.threads[0].regs]).toEqual(want.threads[0].regs)
        // write every cell of w through the view: the bytes decode to w
        const o = w as any
        s.a = o.a
        s.last = o.last
        o.pages.forEach((x: number, i: number) => (s.pages[i] = x))
        o.threads.forEach((t: any, i: number) => {
          s.threads[i].pc = t.pc
          t.regs.forEach((x: number, j: number) => (s.threads[i].regs[j] = x))
          s.threads[i].inner.z = t.inner.z
        })
        expect(decode(shape, b, 1)).toEqual(w)
        expect(b[0]).toBe(0)
        expect(b[b.length - 1]).toBe(0)
      }),
    )
  })

  it('a field named `b` or `o` reads and writes its own bytes; the names the view keeps its bytes under are refused', () => {
    const f = struct({ b: u8(), o: u8(), x: u8() })
    const buf = new Int16Array(4)
    const v = view(f, buf, 1) as any
    v.b = 3
    v.o = 4
    v.x = 5
    expect([...buf]).toEqual([0, 3, 4, 5])
    expect([v.b, v.o, v.x]).toEqual([3, 4, 5])
    expect(() => view(struct({ $buf: u8() }), buf, 0)).toThrow(/field name '\$buf' is reserved/)
  })

  it('two views of one shape over different buffers are independent', () => {
    const f = struct({ x: u8(), y: struct({ z: u8() }) })
    const b1 = new Int16Array(2)
    const b2 = new Int16Array(2)
    const v1 = view(f, b1, 0) as any
    const v2 = view(f, b2, 0) as any
    v1.x = 5
    v1.y.z = 6
    v2.x = 7
    expect([...b1]).toEqual([5, 6])
    expect([...b2]).toEqual([7, 0])
    expect(Object.getPrototypeOf(v1)).toBe(Object.getPrototypeOf(v2))
  })
})
