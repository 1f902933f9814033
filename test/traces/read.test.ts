/** readInputFile: input files (traces, QEMU logs) are read up to a cap; past it, or not a file, one line of bad input. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BadInput } from '../../explorer/errors.js'
import { loadTrace } from '../../traces/file.js'
import { MAX_INPUT_BYTES, readInputFile } from '../../traces/read.js'
import { tempDir } from '../support/cli.js'

const badInput = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(BadInput)
    return (e as Error).message
  }
  return expect.fail('no BadInput')
}

describe('readInputFile', () => {
  it('reads a file up to the cap, refuses one past it by its size', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'ok.txt'), 'x'.repeat(100))
    expect(readInputFile(join(dir, 'ok.txt'), 100)).toBe('x'.repeat(100))
    expect(badInput(() => readInputFile(join(dir, 'ok.txt'), 99))).toBe(`${join(dir, 'ok.txt')}: too large (100 bytes; at most 0 MiB)`)
  })

  it('an endless device is cut at the cap, not read until memory runs out', () => {
    expect(badInput(() => readInputFile('/dev/zero', 1 << 20))).toBe('/dev/zero: too large (more than 1 MiB)')
    // The trace loader goes through it with the default cap (64 MiB read, then refused).
    expect(MAX_INPUT_BYTES).toBe(64 * 1024 * 1024)
    expect(badInput(() => loadTrace('/dev/zero'))).toBe('/dev/zero: too large (more than 64 MiB)')
  })

  it('a directory or a missing file is one line naming it', () => {
    const dir = tempDir()
    expect(badInput(() => readInputFile(dir))).toBe(`${dir}: cannot read: EISDIR`)
    expect(badInput(() => readInputFile(join(dir, 'missing.json')))).toBe(`${join(dir, 'missing.json')}: cannot read: ENOENT`)
  })
})
