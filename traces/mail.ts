/**
 * A trace as a kernel developer pastes it into a commit message or a review
 * reply: plain text within 72 columns, one CPU column per thread that acts
 * (the calls only, in order), the broken invariant and the final state in
 * one sentence, and the commands that reproduce it.
 */
import { allParams, type Scenario } from '../model/scenario.js'
import { diff, formatPath } from './diff.js'
import { wrap } from './diagram.js'
import type { Trace } from './format.js'
import { replayTrace } from './replay.js'

export const MAIL_WIDTH = 72
const GAP = 2
const MIN_COLUMN = 16
/** The final state names at most this many changed fields; a sentence, not a dump. */
const MAX_FIELDS = 8

export function mailText(trace: Trace, file: string, scenario?: Scenario): string {
  const r = replayTrace(trace, scenario)
  const names = r.instance.model.threadNames
  const acting = names.filter((t) => r.steps.some((s) => s.label.thread === t))
  const cpu = (t: string): string => `CPU${acting.indexOf(t)} (${t})`
  // Parameters at their default go unsaid (the replay command names the trace, which records them all).
  const defaults = Object.fromEntries(allParams(r.instance.scenario).map((p) => [p.name, p.default]))
  const params = Object.entries(trace.params).filter(([k, v]) => defaults[k] !== v)
  const lines: string[] = [
    ...wrap(
      `${trace.scenario} --variant ${trace.variant}: ${trace.violation.invariant} (${params.map(([k, v]) => `${k}=${v}, `).join('')}${trace.steps.length} steps)`,
      MAIL_WIDTH,
    ),
    '',
  ]
  const col = Math.floor((MAIL_WIDTH - GAP * (acting.length - 1)) / Math.max(acting.length, 1))
  if (r.steps.length === 0) {
    lines.push('(no step: the initial state is the counterexample)')
  } else if (col >= MIN_COLUMN) {
    const row = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(col + GAP))).join('').trimEnd()
    lines.push(row(acting.map((t) => cpu(t).slice(0, col))), row(acting.map((t) => '-'.repeat(Math.min(col, cpu(t).length)))))
    for (const s of r.steps) {
      const at = acting.indexOf(s.label.thread)
      for (const text of wrap(s.label.text, col)) lines.push(row(acting.map((_, i) => (i === at ? text : ''))))
    }
  } else {
    // Too many CPUs for columns: one line per call, the CPU first.
    const width = Math.max(...acting.map((t) => cpu(t).length))
    for (const s of r.steps) {
      const head = `${cpu(s.label.thread).padEnd(width)}  `
      wrap(s.label.text, MAIL_WIDTH - head.length).forEach((l, i) => lines.push((i === 0 ? head : ' '.repeat(head.length)) + l))
    }
  }
  lines.push('', ...wrap(finalSentence(trace, r), MAIL_WIDTH), '', 'Reproduce:', ...reproduce(trace, params, file))
  return lines.join('\n')
}

function finalSentence(trace: Trace, r: ReturnType<typeof replayTrace>): string {
  const last = r.steps.length > 0 ? r.steps[r.steps.length - 1].after : r.initial
  // The world's net change over the trace (threads' locals left out: the calls above say where each thread is).
  const changed = diff(strip(r.initial), strip(last)).map((c) => `${formatPath(c.path)} = ${JSON.stringify(c.to)}`)
  const state =
    changed.length === 0
      ? 'every field as it started'
      : `${changed.slice(0, MAX_FIELDS).join(', ')}${changed.length > MAX_FIELDS ? ` and ${changed.length - MAX_FIELDS} more fields changed` : ''}`
  const { invariant, outcome, message } = trace.violation
  const seen = r.violations.find((v) => v.invariant === invariant)
  const when = seen ? (seen.step === 0 ? 'In the initial state' : `After step ${seen.step}`) : `After ${r.steps.length} steps`
  const what = outcome !== undefined ? `the run ends with "${outcome}", which breaks ${invariant}: ${message}` : `${invariant} is broken: ${message}`
  return `${when}, ${what}; the final state has ${state}.`
}

function strip(world: unknown): unknown {
  if (typeof world !== 'object' || world === null) return world
  const { threads: _threads, ...rest } = world as Record<string, unknown>
  return rest
}

/** The commands, shell-continued within the width: `check` finds it again, `replay` re-runs this very trace. */
function reproduce(trace: Trace, params: readonly (readonly [string, number])[], file: string): string[] {
  const target = trace.source?.file ?? trace.scenario
  const check = [
    'mapcheck',
    'check',
    target,
    '--variant',
    trace.variant,
    ...(trace.search.mode !== 'bfs' ? ['--mode', trace.search.mode] : []),
    ...(trace.search.seed !== null ? ['--seed', String(trace.search.seed)] : []),
    ...params.map(([k, v]) => `--param ${k}=${v}`),
    ...(trace.cycleStart !== undefined ? ['--livelock'] : []),
  ]
  return [...shellLines(check), ...shellLines(['mapcheck', 'replay', file])]
}

/**
 * A command as indented shell lines within the width, continued with a
 * backslash; a word too long for a line (a trace's path) is cut by a
 * backslash-newline too, its rest unindented, which the shell joins back.
 */
function shellLines(words: readonly string[]): string[] {
  const out: string[] = []
  let line = ''
  const indent = (): number => (out.length === 0 ? 2 : 6)
  for (let w of words) {
    if (line && indent() + line.length + 1 + w.length + 2 > MAIL_WIDTH) {
      out.push(`${' '.repeat(indent())}${line} \\`)
      line = ''
    }
    const room = MAIL_WIDTH - indent() - (line ? line.length + 1 : 0) - 2
    if (w.length > room + 2 && room > 0) {
      out.push(`${' '.repeat(indent())}${line ? `${line} ` : ''}${w.slice(0, room)}\\`)
      w = w.slice(room)
      while (w.length > MAIL_WIDTH) {
        out.push(`${w.slice(0, MAIL_WIDTH - 1)}\\`)
        w = w.slice(MAIL_WIDTH - 1)
      }
      out.push(w)
      line = ''
      continue
    }
    line += line ? ` ${w}` : w
  }
  if (line) out.push(`${' '.repeat(indent())}${line}`)
  return out
}
