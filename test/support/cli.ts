import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll } from 'vitest'

const root = join(import.meta.dirname, '../..')
/** tsx's loader by absolute URL, so the CLI runs from source in any working directory. */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href

export interface CliRun {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the mapcheck CLI from source (through tsx) in `cwd`, stdout not a TTY. */
export function mapcheck(args: readonly string[], cwd: string): CliRun {
  const r = spawnSync(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The CLI from source, spawned (not waited on) in `cwd`: for a test that signals it mid-run. */
export function spawnCli(args: readonly string[], cwd: string) {
  const child = spawn(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<CliRun>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })))
  return { child, done }
}

/** CPU seconds the process has used (all its threads), from /proc; Infinity once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Infinity
  }
}

const made: string[] = []
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A fresh working directory, removed when the test file ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mapcheck-test-'))
  made.push(dir)
  return dir
}
