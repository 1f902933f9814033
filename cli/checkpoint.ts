/**
 * `check --checkpoint FILE [--checkpoint-every INTERVAL]` and `--resume
 * FILE`: the CLI's side of explorer/checkpoint.ts. A checkpoint is written
 * through `writeFileSafely` (a temporary file beside FILE, flushed, renamed
 * over it: a crash leaves the previous checkpoint whole), every INTERVAL of
 * search and once more when the search is cut short (SIGINT/SIGTERM, a
 * bound). Its identity is the scenario, variant, parameters, review file
 * (its SHA-256) and mapcheck's version: a checkpoint of another run is
 * refused, naming what differs.
 */
import { accessSync, closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { CheckpointOptions, CheckpointSource } from '../explorer/checkpoint.js'
import { BadInput } from '../explorer/errors.js'
import type { Instance } from '../invariants/scenarios.js'
import { reasonOf, writeFileSafely } from '../traces/write.js'

export interface CheckpointFlags {
  /** Where to write checkpoints (default: the resumed file, when resuming). */
  readonly file?: string
  readonly every?: Interval
  readonly resume?: string
  /** mapcheck's version: a checkpoint is resumed by the version that wrote it. */
  readonly version: string
}

export type Interval = { readonly ms: number } | { readonly states: number }

const UNIT_MS: Record<string, number> = { '': 60_000, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 }

/** `--checkpoint-every`: minutes (as TLC's -checkpoint), or a number with s, m or h, or `N states` (states expanded). */
export function intervalOption(value: string | undefined): Interval | undefined {
  if (value === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(s|sec|m|min|h|states?)?$/i.exec(value.trim())
  const n = m ? Number(m[1]) : NaN
  if (m && /^states?$/i.test(m[2] ?? '') && Number.isSafeInteger(n) && n >= 1) return { states: n }
  if (m && !/^states?$/i.test(m[2] ?? '') && n > 0 && Number.isFinite(n)) return { ms: n * UNIT_MS[(m[2] ?? '').toLowerCase()] }
  throw new BadInput(`--checkpoint-every ${value}: expected minutes, or a number with s, m or h (30s, 10m, 1h), or a number of states (50000states)`)
}

/** A file read from its start, as a checkpoint source. */
class FileSource implements CheckpointSource {
  private position = 0
  constructor(private readonly fd: number) {}
  read(into: Uint8Array): number {
    const n = readSync(this.fd, into, 0, into.length, this.position)
    this.position += n
    return n
  }
}

export interface Checkpointing {
  readonly options: CheckpointOptions | undefined
  /** The line to print once the search has ended (the final checkpoint written), or null. */
  readonly note: () => string | null
  readonly close: () => void
}

/** The explorer's checkpoint options for one check of `instance`; `close` when the search is over. */
export function checkpointing(flags: CheckpointFlags | undefined, instance: Instance): Checkpointing {
  if (flags === undefined || (flags.file === undefined && flags.resume === undefined)) {
    if (flags?.every !== undefined) throw new BadInput('--checkpoint-every needs --checkpoint FILE (or --resume FILE)')
    return { options: undefined, note: () => null, close: () => {} }
  }
  const file = flags.file ?? flags.resume!
  try {
    accessSync(resolve(dirname(file)), constants.W_OK)
  } catch (e) {
    throw new BadInput(`--checkpoint ${file}: cannot write there: ${reasonOf(e)}`)
  }
  let fd: number | undefined
  if (flags.resume !== undefined) {
    try {
      fd = openSync(flags.resume, 'r')
      if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' })
    } catch (e) {
      if (fd !== undefined) closeSync(fd)
      throw new BadInput(`checkpoint ${flags.resume}: cannot read: ${reasonOf(e)}`)
    }
  }
  let final: number | null = null
  const every = flags.every ?? { ms: 10 * 60_000 }
  const options: CheckpointOptions = {
    identity: {
      scenario: instance.name,
      variant: instance.variant,
      params: Object.entries(instance.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      'review file': instance.scenario.source?.sha256 ?? '(built-in)',
      'mapcheck version': flags.version,
    },
    ...('ms' in every ? { everyMs: every.ms } : { everyStates: every.states }),
    save: (write, isFinal, states) => {
      writeFileSafely(file, (put) => write({ write: put }))
      if (isFinal) final = states
    },
    ...(fd !== undefined ? { resume: new FileSource(fd), resumeName: flags.resume } : {}),
  }
  return {
    options,
    note: () => (final === null ? null : `checkpoint written to ${file} at ${final.toLocaleString('en-US')} states: go on with --resume ${file}`),
    close: () => {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}
