/**
 * The recording view partial-order reduction re-runs steps on: every cell
 * read is noted once, in order; any write (of a field, of an array element,
 * through a method, even of the value the cell held) is noted as a write;
 * the values read and written are the buffer's.
 */
import { describe, expect, it } from 'vitest'
import { Recorder, recordingView } from '../../model/footprint.js'
import { array, sizeOf, struct, u8 } from '../../model/schema.js'

const shape = struct({ a: u8(), xs: array(3, u8()), leaf: array(2, struct({ pfn: u8(), access: u8() })) })
// cells: a = 0, xs = 1..3, leaf[0] = 4,5, leaf[1] = 6,7

function setup() {
  const buf = new Int16Array(sizeOf(shape))
  buf.set([7, 1, 2, 3, 10, 11, 12, 13])
  const rec = new Recorder(buf.length)
  const w = recordingView(shape, buf, 0, rec) as { a: number; xs: Int16Array; leaf: { pfn: number; access: number }[] }
  return { buf, rec, w }
}

describe('recordingView', () => {
  it('notes each cell read once, in first-read order, with the buffer\'s values, and no write', () => {
    const { rec, w } = setup()
    expect(w.leaf[1].access + w.xs[2] + w.a + w.xs[2]).toBe(13 + 3 + 7 + 3)
    expect(rec.reads).toEqual([7, 3, 0])
    expect(rec.wrote).toBe(false)
    rec.reset()
    expect(rec.reads).toEqual([])
    void w.xs[1]
    expect(rec.reads).toEqual([2])
  })

  it('notes a write of a field, an element or a nested field, even of the value held', () => {
    for (const write of [(w: ReturnType<typeof setup>['w']) => (w.a = 7), (w: ReturnType<typeof setup>['w']) => (w.xs[0] = 1), (w: ReturnType<typeof setup>['w']) => (w.leaf[0].pfn = 9)]) {
      const { rec, w } = setup()
      write(w)
      expect(rec.wrote).toBe(true)
    }
    const { buf, w } = setup()
    w.leaf[0].pfn = 9
    w.xs[1] = 5
    expect(Array.from(buf)).toEqual([7, 1, 5, 3, 9, 11, 12, 13])
  })

  it('a method reads the whole array; one that may write (or calls back with the array) is a write', () => {
    const { rec, w } = setup()
    expect([...w.xs]).toEqual([1, 2, 3])
    expect(w.xs.indexOf(3)).toBe(2)
    expect(rec.reads).toEqual([1, 2, 3])
    expect(rec.wrote).toBe(false)
    w.xs.some((x) => x > 2)
    expect(rec.wrote).toBe(true)
    const second = setup()
    second.w.xs.fill(0)
    expect(second.rec.wrote).toBe(true)
    expect(Array.from(second.buf.subarray(1, 4))).toEqual([0, 0, 0])
  })
})
