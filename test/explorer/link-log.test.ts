/**
 * The link log (explorer/link-log.ts): links pushed read back the same
 * from disk pages as from memory, in any order and in ranges across pages;
 * only the page being filled stays in memory; the file is unlinked while
 * open and closed by `close`; a directory that cannot be written, or a
 * write that fails midway, keeps the pages in memory and says why.
 */
import fs from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { LinkLog } from '../../explorer/link-log.js'
import { canSeeFds, namedLinkFiles, openLinkFiles } from '../support/link-files.js'
import { tempDir } from '../support/cli.js'

/** A pseudo-random link for index i (all 32 bits used). */
const linkOf = (i: number): number => Math.imul(i + 1, 0x9e3779b1) >>> 0

function filled(log: LinkLog, n: number): LinkLog {
  for (let i = 0; i < n; i++) log.push(linkOf(i))
  return log
}

const logs: LinkLog[] = []
const made = (log: LinkLog): LinkLog => (logs.push(log), log)
afterEach(() => {
  vi.restoreAllMocks()
  for (const l of logs.splice(0)) l.close()
})
afterAll(() => expect(namedLinkFiles()).toEqual([]))

describe('LinkLog', () => {
  it('pages of 16 links on disk read back as in memory: every link, in a scattered order, and ranges across pages', () => {
    const n = 10_000
    const disk = made(filled(new LinkLog('disk', { pageBits: 4 }), n))
    const memory = made(filled(new LinkLog('memory', { pageBits: 4 }), n))
    let wrong = 0
    for (let j = 0; j < n; j++) {
      const i = Math.imul(j, 7919) % n
      if (disk.get(i) !== linkOf(i) || memory.get(i) !== linkOf(i)) wrong++
    }
    expect(wrong).toBe(0)
    for (const [start, count] of [[0, n], [5, 1], [15, 2], [33, 1000], [n - 20, 20]]) {
      const a = new Uint32Array(count)
      const b = new Uint32Array(count)
      disk.copy(start, count, a)
      memory.copy(start, count, b)
      expect(Array.from(a)).toEqual(Array.from({ length: count }, (_, k) => linkOf(start + k)))
      expect(Array.from(b)).toEqual(Array.from(a))
    }
    expect(() => disk.copy(n - 1, 2, new Uint32Array(2))).toThrow(RangeError)
    // A page goes to disk when the next one begins: every full page but the last.
    const turned = Math.floor((n - 1) / 16)
    expect(disk.diskBytes).toBe(turned * 64)
    expect(disk.bytes).toBe(64)
    expect(memory.diskBytes).toBe(0)
    expect(memory.bytes).toBe((turned + 1) * 64)
    expect(disk.fallback).toBeNull()
  })

  it.runIf(canSeeFds)('the file is open, unlinked, from the first full page until close; no name is ever left in the directory', () => {
    const dir = tempDir()
    const log = made(new LinkLog('disk', { pageBits: 4, dir }))
    filled(log, 16)
    // One full page, not yet turned: no file.
    expect(openLinkFiles()).toEqual([])
    log.push(1)
    const open = openLinkFiles()
    expect(open).toHaveLength(1)
    expect(open[0]).toMatch(new RegExp(`^${dir}/mapcheck-links-${process.pid}-[0-9a-f]+\\.tmp \\(deleted\\)$`))
    expect(fs.readdirSync(dir)).toEqual([])
    expect(log.get(3)).toBe(linkOf(3))
    log.close()
    expect(openLinkFiles()).toEqual([])
    expect(() => log.get(3)).toThrow(/closed/)
    // The page being filled stays readable; closing again is harmless.
    expect(log.get(16)).toBe(1)
    log.close()
  })

  it('a directory that cannot be written: the pages stay in memory, the fallback says why, every link reads back', () => {
    const notDir = join(tempDir(), 'a-file')
    fs.writeFileSync(notDir, '')
    const log = made(filled(new LinkLog('disk', { pageBits: 4, dir: join(notDir, 'sub') }), 1000))
    expect(log.fallback).toMatch(/^kept in memory: ENOTDIR/)
    expect(log.diskBytes).toBe(0)
    expect(log.bytes).toBe(Math.ceil(1000 / 16) * 64)
    let wrong = 0
    for (let i = 0; i < 1000; i++) if (log.get(i) !== linkOf(i)) wrong++
    expect(wrong).toBe(0)
  })

  it('a write that fails midway (a full disk): the pages written stay on disk, the rest in memory, every link reads back', () => {
    let writes = 0
    const real = fs.writeSync
    vi.spyOn(fs, 'writeSync').mockImplementation(((...args: Parameters<typeof fs.writeSync>) => {
      if (++writes > 3) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      return (real as (...a: unknown[]) => number)(...args)
    }) as typeof fs.writeSync)
    const log = made(filled(new LinkLog('disk', { pageBits: 4, dir: tempDir() }), 200))
    expect(log.fallback).toBe('kept in memory: ENOSPC: no space left on device, write')
    expect(log.diskBytes).toBe(3 * 64)
    let wrong = 0
    for (let i = 199; i >= 0; i--) if (log.get(i) !== linkOf(i)) wrong++
    expect(wrong).toBe(0)
  })
})
