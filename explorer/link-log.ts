import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * An append-only array of Uint32 (the fingerprint store's parent links)
 * whose full pages go to a temporary file and leave memory, as TLC keeps
 * its trace file (MC.st) on disk: a search only appends links, and reads
 * them back only to rebuild a counterexample. The page being filled stays
 * in memory.
 *
 * The file (in `os.tmpdir()`, a unique name, created exclusively, mode
 * 0600) is unlinked as soon as it is open: the kernel keeps it while the
 * descriptor is open and frees it when that closes, so no file is left
 * behind whatever ends the search or the process (an exception, a second
 * Ctrl-C, SIGKILL, the OOM killer). Where the OS refuses to unlink an open
 * file (Windows), it is removed on `close` and at process exit.
 *
 * If the file cannot be made or written (a read-only temp dir, a full
 * disk), the pages stay in memory from then on and `fallback` says why:
 * the search goes on, with the memory it would have needed anyway.
 */
export class LinkLog {
  length = 0
  /** Pages wholly written to disk: pages [0, onDisk) are in the file, page p at p * page * 4 bytes. */
  onDisk = 0
  /** Why pages stay in memory though disk was asked (null: they go to disk, or memory was asked). */
  fallback: string | null = null
  private readonly bits: number
  private readonly mask: number
  /** Full pages kept in memory (null: on disk). */
  private readonly pages: (Uint32Array | null)[] = []
  /** The page being filled (page number `pages.length`). */
  private tail: Uint32Array
  private fd = -1
  /** The file's name while it still has one (it could not be unlinked at once). */
  private named: string | null = null
  private closed = false
  /** The last links read from disk: a small window, as a trace reads a few links of each page it passes. */
  private readonly window: Uint32Array
  private windowStart = -1

  constructor(
    /** `disk`: full pages go to a temporary file; `memory`: they stay. */
    private readonly where: 'disk' | 'memory' = 'disk',
    options: { pageBits?: number; dir?: string } = {},
  ) {
    this.bits = options.pageBits ?? 16
    if (!(this.bits >= 0 && this.bits <= 24)) throw new RangeError(`LinkLog: pageBits ${this.bits} outside 0..24`)
    this.mask = (1 << this.bits) - 1
    this.tail = new Uint32Array(1 << this.bits)
    this.window = new Uint32Array(Math.min(WINDOW, 1 << this.bits))
    this.dir = options.dir
  }

  private readonly dir: string | undefined

  push(link: number): void {
    const i = this.length & this.mask
    if (i === 0 && this.length > 0) this.turnPage()
    this.tail[i] = link
    this.length++
  }

  get(i: number): number {
    const p = i >>> this.bits
    if (p === this.pages.length) return this.tail[i & this.mask]
    const page = this.pages[p]
    if (page) return page[i & this.mask]
    const w = this.window.length
    const start = i - (i % w)
    if (start !== this.windowStart) {
      this.readDisk(start, this.window, w)
      this.windowStart = start
    }
    return this.window[i - start]
  }

  /** Copies links [start, start + count) into `into` (a checkpoint streams them a chunk at a time). */
  copy(start: number, count: number, into: Uint32Array): void {
    if (start + count > this.length) throw new RangeError(`LinkLog: links ${start}..${start + count} past ${this.length}`)
    let done = 0
    while (done < count) {
      const i = start + done
      const p = i >>> this.bits
      const off = i & this.mask
      const n = Math.min(count - done, (1 << this.bits) - off)
      const page = p === this.pages.length ? this.tail : this.pages[p]
      if (page) into.set(page.subarray(off, off + n), done)
      else this.readDisk(i, into.subarray(done), n)
      done += n
    }
  }

  /** Bytes of links in memory: the full pages kept there and the page being filled. */
  get bytes(): number {
    return (this.pages.length - this.onDisk + 1) * this.tail.byteLength
  }

  /** Bytes of links in the file. */
  get diskBytes(): number {
    return this.onDisk * this.tail.byteLength
  }

  /** Closes (and so frees) the file; the links on disk cannot be read after. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.windowStart = -1
    if (this.fd >= 0) {
      fs.closeSync(this.fd)
      this.fd = -1
    }
    if (this.named !== null) {
      removeFile(this.named)
      this.named = null
    }
  }

  /** The full tail goes to the file (or stays, in memory mode or past a failure); a new page begins. */
  private turnPage(): void {
    if (this.where === 'disk' && this.fallback === null && !this.closed) {
      try {
        if (this.fd < 0) this.open()
        const bytes = new Uint8Array(this.tail.buffer, this.tail.byteOffset, this.tail.byteLength)
        const at = this.pages.length * bytes.length
        for (let off = 0; off < bytes.length; ) off += fs.writeSync(this.fd, bytes, off, bytes.length - off, at + off)
        this.pages.push(null)
        this.onDisk++
        return
      } catch (e) {
        this.fallback = `kept in memory: ${(e as Error).message}`
      }
    }
    this.pages.push(this.tail)
    this.tail = new Uint32Array(1 << this.bits)
  }

  private open(): void {
    const path = join(this.dir ?? tmpdir(), `mapcheck-links-${process.pid}-${randomBytes(6).toString('hex')}.tmp`)
    this.fd = fs.openSync(path, 'wx+', 0o600)
    try {
      fs.unlinkSync(path)
    } catch {
      this.named = path
      removeAtExit.add(path)
      if (!exitHooked) {
        exitHooked = true
        process.on('exit', () => removeAtExit.forEach(removeFile))
      }
    }
  }

  private readDisk(start: number, into: Uint32Array, count: number): void {
    if (this.closed) throw new Error('LinkLog: closed, its links on disk are gone')
    const bytes = new Uint8Array(into.buffer, into.byteOffset, count * 4)
    for (let off = 0; off < bytes.length; ) {
      const n = fs.readSync(this.fd, bytes, off, bytes.length - off, start * 4 + off)
      if (n <= 0) throw new Error(`LinkLog: the link file ends at link ${start + off / 4}`)
      off += n
    }
  }
}

/** Links read from disk at once for a lookup (4 KiB). */
const WINDOW = 1024

/** Files that could not be unlinked while open: removed on close, or at exit. */
const removeAtExit = new Set<string>()
let exitHooked = false

function removeFile(path: string): void {
  removeAtExit.delete(path)
  try {
    fs.unlinkSync(path)
  } catch {
    // Gone already, or beyond this process's reach: nothing more to do.
  }
}
