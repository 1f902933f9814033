/**
 * writeFileSafely, the one helper every file write goes through: atomic for
 * regular files (a new inode renamed into place: a hard link to the old file
 * keeps the old content), written through a symlink, a FIFO or a device
 * without replacing it, and one line naming the path and the reason when
 * the destination cannot be written; never a temporary file left behind.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { saveTrace } from '../../traces/file.js'
import { isFileWriteError, writeFileSafely } from '../../traces/write.js'
import { tempDir } from '../support/cli.js'
import { loadTrace } from '../../traces/file.js'

const corpus = join(import.meta.dirname, '../../traces/corpus/fault-invalidate-no-retry-no-stale-mapping.json')
const noTemporaries = (dir: string): void => expect(readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.tmp'))).toEqual([])

/** The one-line error writeFileSafely throws. */
function writeError(file: string, text = 'x'): string {
  try {
    writeFileSafely(file, text)
  } catch (e) {
    expect(isFileWriteError(e)).toBe(true)
    const message = (e as Error).message
    expect(message.split('\n')).toHaveLength(1)
    return message
  }
  return expect.fail(`writing ${file} did not fail`)
}

const isRoot = process.getuid?.() === 0

describe('writeFileSafely', () => {
  it('creates the file and its directories', () => {
    const dir = tempDir()
    writeFileSafely(join(dir, 'a/b/t.json'), 'new\n')
    expect(readFileSync(join(dir, 'a/b/t.json'), 'utf8')).toBe('new\n')
    noTemporaries(dir)
  })

  it('replaces a regular file by renaming a new one over it: another hard link to the old file keeps the old content', () => {
    const dir = tempDir()
    const target = join(dir, 't.json')
    writeFileSync(target, 'old\n')
    linkSync(target, join(dir, 'other-name.json'))
    const before = statSync(target).ino
    saveTrace(target, loadTrace(corpus))
    // Written in place, both names would show the new trace and keep one inode.
    expect(statSync(target).ino).not.toBe(before)
    expect(readFileSync(join(dir, 'other-name.json'), 'utf8')).toBe('old\n')
    expect(loadTrace(target).violation.invariant).toBe('no-stale-mapping')
    noTemporaries(dir)
  })

  it('writes through a symlink: the link stays a link and the file it names gets the content', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'real.json'), 'old\n')
    symlinkSync('real.json', join(dir, 'link.json'))
    writeFileSafely(join(dir, 'link.json'), 'new\n')
    expect(lstatSync(join(dir, 'link.json')).isSymbolicLink()).toBe(true)
    expect(readlinkSync(join(dir, 'link.json'))).toBe('real.json')
    expect(readFileSync(join(dir, 'real.json'), 'utf8')).toBe('new\n')
    noTemporaries(dir)
  })

  it('writes through a dangling symlink: the file it names is created, the link kept', () => {
    const dir = tempDir()
    symlinkSync('nowhere/x.json', join(dir, 'dangling.json'))
    writeFileSafely(join(dir, 'dangling.json'), 'new\n')
    expect(lstatSync(join(dir, 'dangling.json')).isSymbolicLink()).toBe(true)
    expect(readFileSync(join(dir, 'nowhere/x.json'), 'utf8')).toBe('new\n')
    noTemporaries(dir)
  })

  it('refuses a directory, "." and a path under a file, in one line naming the path', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'sub'))
    expect(writeError(join(dir, 'sub'))).toBe(`cannot write ${join(dir, 'sub')}: is a directory`)
    expect(writeError('.')).toBe('cannot write .: is a directory')
    writeFileSync(join(dir, 'plain'), '')
    expect(writeError(join(dir, 'plain/t.json'))).toBe(`cannot write ${join(dir, 'plain/t.json')}: cannot create directory ${join(dir, 'plain')}: a component of the path is not a directory`)
    noTemporaries(dir)
  })

  it('an unwritable place is one line: /proc (where Node\'s own mkdir -p never returns), a read-only directory', () => {
    expect(writeError('/proc/x.json')).toMatch(/^cannot write \/proc\/x\.json: (no such file or directory|permission denied)$/)
    expect(writeError('/proc/mapcheck/traces/x.json')).toMatch(/^cannot write \/proc\/mapcheck\/traces\/x\.json: cannot create directory \/proc\/mapcheck\/traces: (no such file or directory|permission denied)$/)
    if (!isRoot) {
      const dir = tempDir()
      mkdirSync(join(dir, 'ro'))
      chmodSync(join(dir, 'ro'), 0o555)
      expect(writeError(join(dir, 'ro/t.json'))).toBe(`cannot write ${join(dir, 'ro/t.json')}: permission denied`)
      chmodSync(join(dir, 'ro'), 0o755)
      noTemporaries(dir)
    }
  })

  it('writes through a character device in place, never replacing the device node', () => {
    writeFileSafely('/dev/null', 'discarded\n')
    expect(lstatSync('/dev/null').isCharacterDevice()).toBe(true)
    // /dev/full: every write fails with ENOSPC; the node is not replaced by a regular file (as root, a rename would).
    if (lstatSync('/dev/full', { throwIfNoEntry: false })?.isCharacterDevice()) {
      expect(writeError('/dev/full')).toBe('cannot write /dev/full: no space left on device')
      expect(lstatSync('/dev/full').isCharacterDevice()).toBe(true)
    }
  })

  it('writes through a FIFO that has a reader, more than a pipe holds; refuses one without, rather than block', async () => {
    const dir = tempDir()
    const fifo = join(dir, 'fifo')
    if (spawnSync('mkfifo', [fifo]).status !== 0) return
    expect(writeError(fifo)).toBe(`cannot write ${fifo}: a FIFO with no reader`)
    const reader = spawn('cat', [fifo])
    let got = ''
    reader.stdout.on('data', (d) => (got += d))
    const ended = new Promise((resolve) => reader.on('close', resolve))
    // 256 KiB: four times a Linux pipe's buffer, so the writer waits for the reader.
    const text = 'through the fifo\n'.repeat(16 * 1024)
    // The reader has the FIFO open once a non-blocking writer can open it.
    for (let tries = 0; ; tries++) {
      try {
        writeFileSafely(fifo, text)
        break
      } catch (e) {
        if (tries > 400 || !/a FIFO with no reader/.test((e as Error).message)) throw e
        await new Promise((r) => setTimeout(r, 25))
      }
    }
    await ended
    expect(got).toBe(text)
    expect(lstatSync(fifo).isFIFO()).toBe(true)
    noTemporaries(dir)
  })
})
