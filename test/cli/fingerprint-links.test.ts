/**
 * check --store fingerprint keeps its parent links on disk by default and
 * says so (text and JSON); --links memory keeps them in memory; --links
 * without the fingerprint store is bad input. Interrupted (SIGINT) or
 * killed (SIGKILL) in the middle of a search, the CLI leaves no link file.
 */
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../cli/exit.js'
import { sizeText } from '../../cli/stop.js'
import { mapcheck, spawnCli, tempDir } from '../support/cli.js'
import { canSeeFds, namedLinkFiles, openLinkFiles } from '../support/link-files.js'

const REF = ['check', 'fault-invalidate', '--param', 'P=4', '--param', 'V=2', '--param', 'K=2', '--store', 'fingerprint']

describe('check --store fingerprint --links', () => {
  it('links on disk by default (every full page of 2^16 links), in memory with --links memory; --links alone is bad input', () => {
    const dir = tempDir()
    const json = JSON.parse(mapcheck([...REF, '--json'], dir).stdout)
    expect(json.stats.states).toBeGreaterThan(65_536)
    expect(json.stats.diskBytes).toBe(Math.floor((json.stats.states - 1) / 65_536) * 65_536 * 4)
    expect(json.stats.linksFallback).toBeUndefined()
    const disk = mapcheck(REF, dir)
    expect(disk.status, disk.stderr).toBe(EXIT.ok)
    expect(disk.stdout).toMatch(/^ok {2}[\d,]+ states, .*; fingerprints: probability a collision hid a state ~ \d\.\de-\d+, parent links on disk [\d.]+ KiB$/m)
    expect(disk.stdout).toContain(`parent links on disk ${sizeText(json.stats.diskBytes)}`)
    const memory = JSON.parse(mapcheck([...REF, '--links', 'memory', '--json'], dir).stdout)
    expect(memory.stats.diskBytes).toBe(0)
    expect(memory.stats.storeBytes - json.stats.storeBytes).toBe(json.stats.diskBytes)
    expect(mapcheck([...REF, '--links', 'memory'], dir).stdout).not.toMatch(/parent links/)
    const bad = mapcheck(['check', 'fault-invalidate', '--links', 'memory'], dir)
    expect(bad.status).toBe(EXIT.badInput)
    expect(bad.stderr.trim()).toBe('mapcheck: --links applies to --store fingerprint only; --store full keeps its parent links with its states')
  })

  it.runIf(canSeeFds)('SIGINT or SIGKILL in the middle of a search: no link file is left in the temp dir', async () => {
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      const cwd = tempDir()
      // 4,2,1,2,2 unreduced: 6 M states, so the search is still running when its first page of links is on disk.
      const { child, done } = spawnCli([...REF, '--param', 'F=2', '--no-symmetry'], cwd)
      let exited = false
      void done.then(() => (exited = true))
      while (!exited && openLinkFiles(child.pid!).length === 0) await new Promise((r) => setTimeout(r, 50))
      expect(exited, 'the search ended before it wrote a page of links').toBe(false)
      expect(openLinkFiles(child.pid!)).toEqual([expect.stringMatching(/mapcheck-links-\d+-[0-9a-f]+\.tmp \(deleted\)$/)])
      child.kill(signal)
      const r = await done
      if (signal === 'SIGINT') {
        expect(r.status, r.stderr).toBe(EXIT.incomplete)
        expect(r.stdout).toMatch(/^incomplete \(interrupted\) {2}.*parent links on disk \d/m)
      } else expect(r.status).toBeNull()
      expect(namedLinkFiles(undefined, child.pid!)).toEqual([])
    }
  })
})
