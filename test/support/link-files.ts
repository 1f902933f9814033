/**
 * The fingerprint store's link files (explorer/link-log.ts) this process
 * holds open, seen by the OS: /proc/self/fd's targets naming one (Linux
 * only; elsewhere the tests that need it are skipped). An unlinked file
 * reads "... (deleted)"; a closed one is gone from the list.
 */
import { readdirSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'

export const canSeeFds = process.platform === 'linux'

const prefix = (pid: number) => `mapcheck-links-${pid}-`

/** Targets of the open descriptors of process `pid` (default: this one) that are link files. */
export function openLinkFiles(pid: number | 'self' = 'self'): string[] {
  const want = prefix(pid === 'self' ? process.pid : pid)
  const out: string[] = []
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return out
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (target.includes(want)) out.push(target)
    } catch {
      // closed meanwhile
    }
  }
  return out
}

/** Link files of process `pid` (default: this one) with a name in `dir` (default: the temp dir). */
export function namedLinkFiles(dir = tmpdir(), pid = process.pid): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(prefix(pid)))
}
