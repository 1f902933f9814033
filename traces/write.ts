/**
 * Every file mapcheck writes (traces, corpus updates, internal-error
 * reports) goes through `writeFileSafely`:
 *
 * - a regular file (or a new one) is written to a temporary name in the same
 *   directory, flushed, then renamed over the target: a reader (or a crash,
 *   or a second Ctrl-C) sees the old content or the new, never half of it;
 * - a symbolic link is written through: the file it points to is replaced
 *   (or created) the same way and the link stays a link;
 * - a FIFO or a character device (`/dev/stdout`, `--out >(jq .)`) is written
 *   through in place, never replaced by a regular file; a FIFO without a
 *   reader is refused rather than waited on;
 * - anything else (a directory, a socket) is refused.
 *
 * Every failure is a `FileWriteError` whose message is one line naming the
 * path and the reason; no temporary file is left behind.
 */
import { closeSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'

export class FileWriteError extends Error {
  override readonly name = 'FileWriteError'
}

export const isFileWriteError = (e: unknown): e is FileWriteError => e instanceof Error && e.name === 'FileWriteError'

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'exists and is not a directory',
  ENXIO: 'a FIFO with no reader',
  EPIPE: 'the reader went away',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error',
  EFBIG: 'file too large',
}

/** One line: the reason of a file system error. */
export function reasonOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  if (code && REASONS[code]) return REASONS[code]
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]
}

/**
 * Called around every write: the CLI's worker counts writes in progress, so
 * that a second Ctrl-C exits between two writes, not inside one.
 */
export const writeGuard = { enter: (): void => {}, leave: (): void => {} }

const fail = (file: string, reason: string): FileWriteError => new FileWriteError(`cannot write ${file}: ${reason}`)

/** What is written: text, bytes, or a producer handing its bytes to `put` in order (a large file, never whole in memory). */
export type Content = string | Uint8Array | ((put: (bytes: Uint8Array) => void) => void)

export function writeFileSafely(file: string, text: Content): void {
  writeGuard.enter()
  try {
    write(file, text)
  } finally {
    writeGuard.leave()
  }
}

function write(file: string, text: Content): void {
  let st
  try {
    st = lstatSync(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw fail(file, reasonOf(e))
  }
  if (st === undefined) return replace(file, file, text, true)
  if (st.isFile()) return replace(file, file, text, false)
  if (st.isSymbolicLink()) {
    let target: string
    try {
      target = realpathSync(file)
    } catch {
      // Dangling: the file the link names is created (its directory too), the link kept.
      return replace(file, danglingTarget(file), text, true)
    }
    const t = statSync(target)
    if (t.isFile()) return replace(file, target, text, false)
    if (t.isFIFO() || t.isCharacterDevice()) return writeThrough(file, target, text, t.isFIFO())
    throw fail(file, t.isDirectory() ? 'a symbolic link to a directory' : 'a symbolic link to something not a file')
  }
  if (st.isFIFO() || st.isCharacterDevice()) return writeThrough(file, file, text, st.isFIFO())
  throw fail(file, st.isDirectory() ? 'is a directory' : st.isSocket() ? 'is a socket' : 'is not a regular file')
}

/** Temporary file beside `target`, flushed, renamed over it. */
function replace(file: string, target: string, text: Content, create: boolean): void {
  const dir = dirname(target)
  if (create) {
    try {
      makeDirectories(dir)
    } catch (e) {
      throw fail(file, `cannot create directory ${dir}: ${reasonOf(e)}`)
    }
  }
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`)
  let fd: number | undefined
  try {
    // O_EXCL: never through a link or file someone left at the temporary name.
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644)
    writeAll(fd, text)
    fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    renameSync(tmp, target)
  } catch (e) {
    if (fd !== undefined) closeSync(fd)
    rmSync(tmp, { force: true })
    throw isFileWriteError(e) ? e : fail(file, reasonOf(e))
  }
}

/**
 * A FIFO or a device: written in place. A FIFO is opened non-blocking, so
 * that one nobody reads is refused (ENXIO) rather than waited on; that same
 * descriptor is written (closing it and opening again would give the reader
 * an end of file in between), waiting out a full pipe.
 */
function writeThrough(file: string, target: string, text: Content, fifo: boolean): void {
  let fd: number | undefined
  try {
    fd = openSync(target, fifo ? constants.O_WRONLY | constants.O_NONBLOCK : constants.O_WRONLY)
    writeAll(fd, text)
  } catch (e) {
    throw fail(file, reasonOf(e))
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4))

/** The end of a chain of links, the last of which names nothing yet. */
function danglingTarget(link: string): string {
  let path = link
  for (let hops = 0; hops < 40; hops++) {
    const st = lstatSync(path, { throwIfNoEntry: false })
    if (!st?.isSymbolicLink()) return path
    path = resolve(dirname(path), readlinkSync(path))
  }
  throw fail(link, 'too many symbolic links')
}

/**
 * `mkdir -p`, one level at a time: Node's own recursive mkdir never returns
 * under /proc (ENOENT there, retried forever).
 */
function makeDirectories(dir: string): void {
  const missing: string[] = []
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = statSync(d, { throwIfNoEntry: false })
    if (st !== undefined) {
      if (!st.isDirectory()) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' })
      break
    }
    missing.push(d)
    if (dirname(d) === d) break
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d)
    } catch (e) {
      // Made meanwhile by someone else: fine if it is a directory.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(d).isDirectory()) throw e
    }
  }
}

function writeAll(fd: number, text: Content): void {
  if (typeof text === 'function') return text((bytes) => writeAll(fd, bytes))
  const bytes = typeof text === 'string' ? Buffer.from(text) : text
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off)
    } catch (e) {
      // A non-blocking FIFO whose reader is slower than us: wait for room.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e
      Atomics.wait(pause, 0, 0, 5)
    }
  }
}
