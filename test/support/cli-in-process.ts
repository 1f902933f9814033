import { stripVTControlCharacters } from 'node:util'
import { runCli } from '../../cli/program.js'
import type { CliRun } from './cli.js'

/**
 * Runs a mapcheck command in this process (cli/program.ts, as the CLI's
 * worker runs it), capturing what it writes; colour codes stripped. Much
 * cheaper than spawning the CLI; the working directory is this process's.
 */
export async function cliInProcess(argv: readonly string[]): Promise<CliRun> {
  const out: string[] = []
  const err: string[] = []
  const { write: stdout } = process.stdout
  const { write: stderr } = process.stderr
  const capture = (into: string[]) => ((chunk: string | Uint8Array) => (into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()), true)) as typeof process.stdout.write
  process.stdout.write = capture(out)
  process.stderr.write = capture(err)
  let status: number
  try {
    status = await runCli(argv)
  } finally {
    process.stdout.write = stdout
    process.stderr.write = stderr
  }
  return { status, stdout: stripVTControlCharacters(out.join('')), stderr: stripVTControlCharacters(err.join('')) }
}
