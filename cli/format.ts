import pc from 'picocolors'
import type { Stats } from '../explorer/result.js'
import { sizeText } from './stop.js'

export const num = (n: number): string => n.toLocaleString('en-US')

export function statsLine(s: Stats): string {
  const links = s.linksFallback !== undefined ? `, parent links ${s.linksFallback}` : s.diskBytes ? `, parent links on disk ${sizeText(s.diskBytes)}` : ''
  const fp = s.collisionProbability !== undefined ? `; fingerprints: probability a collision hid a state ~ ${s.collisionProbability.toExponential(1)}${links}` : ''
  const sym = s.symmetry ? `; symmetry: ${s.symmetry.renamings} renamings, the states stand for ${num(s.symmetry.orbitStates)}` : ''
  const par = s.parallel && s.parallel.levels > 0 ? `; ${s.parallel.workers} workers on ${s.parallel.levels} levels` : ''
  // Where it ran and reduced; why it did not run is in --json (stats.por.off), not on every line.
  const por = s.por !== undefined && 'reduced' in s.por && s.por.reduced > 0 ? `; partial-order reduction: ${num(s.por.reduced)} states expanded by one thread's step alone` : ''
  const live = s.livelock ? `; livelock search: ${num(s.livelock.states)} states unreduced, ${s.livelock.seconds.toFixed(2)} s` : ''
  return `${num(s.states)} states, ${num(s.transitions)} transitions, max depth ${s.maxDepth}, ${s.seconds.toFixed(2)} s (${num(Math.round(s.statesPerSecond))} states/s)${par}${sym}${por}${fp}${live}`
}

/** A metric's range: `min..max` (or one value), a share as a percentage. */
export const metricText = (r: { min: number; max: number }, unit?: 'share' | 'count'): string => {
  const fmt = (x: number): string => (unit === 'share' ? `${Math.round(x * 1000) / 10}%` : Number.isInteger(x) ? String(x) : x.toFixed(3))
  return r.min === r.max ? fmt(r.min) : `${fmt(r.min)}..${fmt(r.max)}`
}

export function paramsText(params: Readonly<Record<string, number>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

/** Left-aligned columns separated by two spaces; cells may carry colour codes. */
export function table(rows: readonly (readonly string[])[]): string {
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length
  const widths: number[] = []
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(c))))
  return rows
    .map((row) => row.map((c, i) => (i === row.length - 1 ? c : c + ' '.repeat(widths[i] - visible(c)))).join('  '))
    .join('\n')
}

export const verdictColour = (v: string): string =>
  v === 'ok' || v === 'holds' ? pc.green(v) : v === 'violation' || v.startsWith('VIOLATED') ? pc.red(v) : pc.yellow(v)
