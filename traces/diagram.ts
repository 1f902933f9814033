/**
 * The race diagram, as kernel commit messages draw them: one column per
 * thread that acts, each step numbered, its label, and under it what the
 * step changed that matters (globals and the thread's own locals; the
 * program counter is the label itself). Plain text, at most 80 columns, to
 * paste into a mail.
 */
import type { StepLabel } from '../explorer/model.js'
import { diff, formatPath, type Change } from './diff.js'

export const DIAGRAM_WIDTH = 80
const NUM = 4 // "123 "
const MIN_COLUMN = 16

export interface DiagramInput {
  readonly title: string
  readonly steps: readonly { readonly index: number; readonly label: StepLabel; readonly before: unknown; readonly after: unknown }[]
  /** Thread names in model order, to map `threads[i]` paths. */
  readonly threadNames: readonly string[]
  readonly violation: { readonly invariant: string; readonly message: string; readonly step: number } | null
  /** For one run of an outcome property's violation: the outcome this run ends with. */
  readonly outcome?: { readonly invariant: string; readonly outcome: string; readonly message: string }
  /** A lasso trace: the steps that repeat forever (1-based, inclusive). */
  readonly cycle?: { readonly from: number; readonly to: number }
}

export function raceDiagram(input: DiagramInput): string {
  const acting = input.threadNames.filter((t) => input.steps.some((s) => s.label.thread === t))
  const lines: string[] = [...wrap(input.title, DIAGRAM_WIDTH), '']
  const colWidth = Math.floor((DIAGRAM_WIDTH - NUM) / Math.max(acting.length, 1))
  if (colWidth < MIN_COLUMN) {
    lines.push(...linear(input))
  } else {
    lines.push(' '.repeat(NUM) + acting.map((t) => pad(t, colWidth)).join('').trimEnd())
    lines.push(' '.repeat(NUM) + acting.map(() => pad('-'.repeat(colWidth - 2), colWidth)).join('').trimEnd())
    for (const step of input.steps) {
      const col = acting.indexOf(step.label.thread)
      const body = [...wrap(step.label.text, colWidth - 1), ...changes(step, input.threadNames).flatMap((c) => wrap(`  ${c}`, colWidth - 1))]
      body.forEach((text, i) => {
        const num = i === 0 ? pad(String(step.index), NUM - 1) + ' ' : ' '.repeat(NUM)
        lines.push((num + ' '.repeat(col * colWidth) + text).trimEnd())
      })
    }
  }
  lines.push('')
  if (input.cycle) lines.push(`steps ${input.cycle.from}–${input.cycle.to} repeat forever`)
  if (input.outcome) {
    lines.push(...wrap(`ENDS WITH "${input.outcome.outcome}" (${input.outcome.invariant}):`, DIAGRAM_WIDTH))
    lines.push(...wrap(input.outcome.message, DIAGRAM_WIDTH - 2).map((l) => `  ${l}`))
  } else if (input.violation) {
    const at = input.violation.step === 0 ? 'in the initial state' : `after step ${input.violation.step}`
    lines.push(...wrap(`VIOLATED ${input.violation.invariant} ${at}:`, DIAGRAM_WIDTH))
    lines.push(...wrap(input.violation.message, DIAGRAM_WIDTH - 2).map((l) => `  ${l}`))
  } else {
    lines.push('no invariant violated: the trace runs to its end')
  }
  return lines.join('\n')
}

/** Fallback for many threads: one line per step. */
function linear(input: DiagramInput): string[] {
  const width = Math.max(...input.threadNames.map((t) => t.length))
  return input.steps.flatMap((step) => {
    const head = `${pad(String(step.index), NUM - 1)} ${pad(step.label.thread, width + 1)}`
    const text = [step.label.text, ...changes(step, input.threadNames)].join('; ')
    return wrap(text, DIAGRAM_WIDTH - head.length).map((l, i) => (i === 0 ? head : ' '.repeat(head.length)) + l)
  })
}

/** What a step changed, as `name: from -> to`, the acting thread's locals without its prefix and its pc left out. */
export function changes(step: { label: StepLabel; before: unknown; after: unknown }, threadNames: readonly string[]): string[] {
  return diff(step.before, step.after)
    .filter((c) => !(c.path[0] === 'threads' && c.path[2] === 'pc'))
    .map((c) => `${name(c, step.label.thread, threadNames)}: ${show(c.from)} -> ${show(c.to)}`)
}

function name(c: Change, thread: string, threadNames: readonly string[]): string {
  if (c.path[0] !== 'threads' || typeof c.path[1] !== 'number') return formatPath(c.path)
  const owner = threadNames[c.path[1]] ?? `threads[${c.path[1]}]`
  const rest = formatPath(c.path.slice(2))
  return owner === thread ? rest : `${owner}.${rest}`
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v)
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length)
}

/** Word-wraps to `width`, breaking words longer than a line. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = []
  let line = ''
  for (let word of text.split(/\s+/).filter(Boolean)) {
    while (word.length > width) {
      if (line) out.push(line)
      line = ''
      out.push(word.slice(0, width))
      word = word.slice(width)
    }
    if (!line) line = word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      out.push(line)
      line = word
    }
  }
  if (line || out.length === 0) out.push(line)
  return out
}
