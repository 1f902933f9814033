/**
 * A table that fits a terminal width (100 columns: a mail, a CI log, a
 * side-by-side diff): first as is; then with the long text of `wrap` columns
 * word-wrapped onto several lines; then, when still too wide, its columns
 * split into several tables, each repeating the first `keep` columns (the
 * row's name). Cells may carry colour codes; widths count visible characters.
 */
import { wrap } from '../traces/diagram.js'

export const TABLE_WIDTH = 100
const GAP = 2
const MIN_WRAP = 12

const ANSI = /\x1b\[[0-9;]*m/g
export const visible = (s: string): number => s.replace(ANSI, '').length
/** The widest line of a block of text, in visible characters. */
export const widest = (text: string): number => Math.max(0, ...text.split('\n').map(visible))

export interface FitOptions {
  readonly width?: number
  /** Leading columns repeated in every part when the columns are split. */
  readonly keep?: number
  /** Columns whose text may be wrapped onto several lines. */
  readonly wrap?: readonly number[]
}

type Cell = readonly string[] // a cell's lines

export function fitTable(rows: readonly (readonly string[])[], options: FitOptions = {}): string {
  const width = options.width ?? TABLE_WIDTH
  const keep = options.keep ?? 1
  const original: Cell[][] = rows.map((r) => r.map((c) => [c]))
  let cells = original
  const widths = (): number[] => {
    const w: number[] = []
    for (const row of cells) row.forEach((c, i) => (w[i] = Math.max(w[i] ?? 0, ...c.map(visible))))
    return w
  }
  const total = (w: readonly number[]): number => w.reduce((a, b) => a + b, 0) + GAP * Math.max(w.length - 1, 0)
  // A wrapped column stays as wide as its header and its longest word (an invariant's name is not cut).
  const floor = (i: number): number =>
    Math.max(MIN_WRAP, visible(rows[0]?.[i] ?? ''), ...rows.slice(1).flatMap((r) => (r[i] ?? '').replace(ANSI, '').split(/\s+/).map((x) => x.length)))
  // Narrow the widest wrappable column one character at a time (rewrapping its text from the original), the header row kept whole.
  const limit = new Map<number, number>()
  for (let w = widths(); total(w) > width; w = widths()) {
    const col = (options.wrap ?? []).filter((i) => w[i] > floor(i)).sort((a, b) => w[b] - w[a] || a - b)[0]
    if (col === undefined) break
    limit.set(col, w[col] - 1)
    cells = original.map((row, r) => (r === 0 ? row : row.map((c, i) => (limit.has(i) ? c.flatMap((line) => wrapColoured(line, limit.get(i)!)) : c))))
  }
  const w = widths()
  if (total(w) <= width || w.length <= keep + 1) return render(cells, w.map((_, i) => i), w)
  // Split the columns: the kept ones, then as many others as fit, per part.
  const parts: number[][] = []
  let part: number[] = []
  const base = total(w.slice(0, keep)) + GAP
  let used = base
  for (let i = keep; i < w.length; i++) {
    if (part.length > 0 && used + w[i] > width) {
      parts.push(part)
      part = []
      used = base
    }
    part.push(i)
    used += w[i] + GAP
  }
  parts.push(part)
  const kept = Array.from({ length: keep }, (_, i) => i)
  return parts.map((p) => render(cells, [...kept, ...p], w)).join('\n\n')
}

function render(cells: readonly Cell[][], columns: readonly number[], w: readonly number[]): string {
  const out: string[] = []
  for (const row of cells) {
    const height = Math.max(1, ...columns.map((i) => row[i]?.length ?? 0))
    for (let line = 0; line < height; line++) {
      const text = columns.map((i, k) => {
        const s = row[i]?.[line] ?? ''
        return k === columns.length - 1 ? s : s + ' '.repeat(w[i] - visible(s))
      })
      out.push(text.join(' '.repeat(GAP)).trimEnd())
    }
  }
  return out.join('\n')
}

/** Word-wraps a cell, keeping its colour (a cell is coloured whole) on every line. */
function wrapColoured(s: string, width: number): string[] {
  const m = /^(\x1b\[[0-9;]*m)([^\x1b]*)(\x1b\[[0-9;]*m)$/.exec(s)
  if (m) return wrap(m[2], width).map((l) => `${m[1]}${l}${m[3]}`)
  return wrap(s.replace(ANSI, ''), width)
}

/**
 * Short names for long column headers (`no-stale-mapping` -> `nsm`), unique,
 * with the legend that spells them out.
 */
export function abbreviations(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  const taken = new Set<string>()
  for (const name of names) {
    const words = name.split(/[^a-zA-Z0-9]+/).filter(Boolean)
    let short = words.map((x) => x[0]).join('').toLowerCase() || name.slice(0, 3)
    if (short.length < 2) short = name.slice(0, 3)
    let candidate = short
    for (let n = 2; taken.has(candidate); n++) candidate = `${short}${n}`
    taken.add(candidate)
    out.set(name, candidate)
  }
  return out
}

/** `short = long` pairs, wrapped to `width`. */
export function legend(abbrev: ReadonlyMap<string, string>, width = TABLE_WIDTH): string[] {
  return wrap([...abbrev].map(([long, short]) => `${short}=${long}`).join(', '), width)
}
