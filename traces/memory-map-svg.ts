/**
 * The memory-map picture of one state, as SVG: a row per gfn, a column per
 * lane the scenario declares (SLAT/EPT leaves, host page table, folios,
 * bindings/regions, values), huge-page boundaries as thick lines, and under
 * it host memory by pfn with the folios' boundaries and orders. The entries
 * an invariant's message names (`gfn N`, `page N`, `pfn N`) are outlined and
 * the message is drawn beside them.
 */
import { FRAME_KIND_NAMES, type MapCell, type MapLane, type MemoryMap } from '../model/memory-map.js'
import { wrap } from './diagram.js'

const ROW = 22
const LABEL = 84
const LANE = 140
const HEAD = 26
const FRAME = 30
const FRAMES_PER_LINE = 16
const NOTE = 230

export interface Highlight {
  readonly rows: readonly number[]
  readonly pfns: readonly number[]
  readonly message: string
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const hex = (n: number): string => `0x${n.toString(16)}`
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0))

/** What an invariant's message names: gfns (absolute) or pages (row indices), and pfns. */
export function namedEntries(message: string, map: Pick<MemoryMap, 'rows' | 'firstGfn'>): Omit<Highlight, 'message'> {
  const rows = new Set<number>()
  const pfns = new Set<number>()
  const value = (s: string): number => (s.startsWith('0x') ? parseInt(s, 16) : Number(s))
  for (const m of message.matchAll(/\bgfns? (0x[0-9a-f]+|\d+)(?:\.\.(0x[0-9a-f]+|\d+))?/gi)) {
    const [a, b] = [value(m[1]), m[2] ? value(m[2]) : value(m[1])]
    for (let g = a; g <= b && g - a < 64; g++) rows.add(g - (map.firstGfn ?? 0))
  }
  for (const m of message.matchAll(/\bpages? (\d+)\b/gi)) rows.add(Number(m[1]))
  for (const m of message.matchAll(/\bpfns? (0x[0-9a-f]+|\d+)/gi)) pfns.add(value(m[1]))
  return { rows: [...rows].filter((r) => r >= 0 && r < map.rows).sort((a, b) => a - b), pfns: [...pfns].sort((a, b) => a - b) }
}

const get = (w: any, field: string | undefined): any => (field === undefined ? undefined : w?.[field])

/** A lane's cell at a row, and how many rows it spans (a huge leaf, a PMD, a folio). */
function laneCell(lane: MapLane, w: any, row: number, map: MemoryMap): { cell: MapCell & { note?: string }; group?: string } {
  const HP = map.hugePages ?? 1
  switch (lane.kind) {
    case 'leaf': {
      const e = get(w, lane.field)?.[row]
      const pfn = lane.pfn ? num(e?.[lane.pfn]) : num(e)
      if (!pfn) return { cell: { text: '-', kind: 'none' } }
      const raw = lane.order ? num(e?.[lane.order]) : lane.orderField ? num(get(w, lane.orderField)?.[row]) : lane.pages ? Math.log2(Math.max(1, num(e?.[lane.pages]))) : 0
      const order = lane.toOrder ? lane.toOrder(raw) : raw
      const access = lane.access !== undefined ? (lane.accessNames?.[num(e?.[lane.access])] ?? String(e?.[lane.access])) : ''
      const gfn = (map.firstGfn ?? 0) + row
      return {
        cell: { text: `pfn ${hex(pfn)}${order > 0 ? '' : ' 4K'}${access ? ` ${access}` : ''}`, kind: order > 0 ? 'huge' : 'small', pfns: [pfn], ...(order > 0 ? { note: `huge leaf, order ${order}` } : {}) },
        group: order > 0 ? `leaf:${gfn >> order}:${order}` : undefined,
      }
    }
    case 'host': {
      const pfn = num(get(w, lane.pte)?.[row])
      const block = Math.floor(((lane.firstUaddr ?? 0) % HP + row) / HP)
      const pmd = lane.pmd !== undefined && num(get(w, lane.pmd)?.[block]) !== 0
      if (!pfn) return { cell: { text: '-', kind: 'none' } }
      return { cell: { text: `${pmd ? 'PMD' : 'PTE'} pfn ${hex(pfn)}`, kind: pmd ? 'huge' : 'small', pfns: [pfn], ...(pmd ? { note: 'PMD-mapped THP' } : {}) }, group: pmd ? `pmd:${block}` : undefined }
    }
    case 'folio': {
      const order = num(get(w, lane.order)?.[row])
      const pfn = lane.pfn ? num(get(w, lane.pfn)?.[row]) : 0
      const poisoned = lane.poison !== undefined && num(get(w, lane.poison)?.[row]) !== 0
      if (lane.pfn && !pfn) return { cell: { text: '-', kind: 'none' } }
      const text = `${pfn ? `pfn ${hex(pfn)} ` : ''}${poisoned ? 'POISON' : `order ${order}`}`
      return { cell: { text, kind: poisoned ? 'freed' : order > 0 ? 'huge' : 'small', pfns: pfn ? [pfn] : [], ...(order > 0 ? { note: `folio of order ${order}` } : {}) }, group: order > 0 && !poisoned ? `folio:${row >> order}:${order}` : undefined }
    }
    case 'range': {
      if (lane.field === undefined) {
        const live = lane.live === undefined ? 1 : num(get(w, lane.live))
        const [a, b] = lane.rows ?? [0, map.rows]
        if (row < a || row >= b) return { cell: { text: '', kind: 'none' } }
        const name = lane.liveNames?.[live] ?? (live ? lane.label : 'gone')
        return { cell: { text: name, kind: live ? 'other' : 'freed' }, group: `range:${lane.label}` }
      }
      const ranges = (get(w, lane.field) ?? []) as any[]
      const gfn = (map.firstGfn ?? 0) + row
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]
        const live = lane.live === undefined ? 1 : num(r?.[lane.live])
        const start = lane.start === undefined ? (map.firstGfn ?? 0) : num(r?.[lane.start])
        const count = lane.count === undefined ? map.rows : num(r?.[lane.count])
        const state = lane.liveNames?.[live] ? ` ${lane.liveNames[live]}` : ''
        if (live && gfn >= start && gfn < start + count) return { cell: { text: `${lane.label} ${i}${state}`, kind: 'other' }, group: `range:${lane.label}:${i}` }
      }
      return { cell: { text: '', kind: 'none' } }
    }
    case 'value': {
      if (lane.cell) return { cell: lane.cell(w, row) }
      const v = get(w, lane.field)?.[row]
      const text = lane.names?.[num(v)] ?? (typeof v === 'object' ? JSON.stringify(v) : String(v ?? ''))
      return { cell: { text, kind: num(v) ? 'other' : 'none' } }
    }
  }
}

const laneLabel = (lane: MapLane): string =>
  lane.kind === 'host' ? (lane.label ?? 'host page table') : lane.kind === 'folio' ? (lane.label ?? 'folios') : lane.label

const FILL: Record<MapCell['kind'], string> = { none: '#ffffff', small: '#dbeafe', huge: '#bbf7d0', freed: '#e5e7eb', other: '#fef3c7' }

export function memoryMapSvg(map: MemoryMap, w: unknown, highlight?: Highlight): string {
  const lanes = map.lanes
  const width0 = LABEL + lanes.length * LANE
  const note = highlight ? NOTE : 0
  const gridH = HEAD + map.rows * ROW
  const frames = map.frames ? ((get(w, map.frames) ?? []) as number[]) : []
  const pfnCount = Math.max(0, frames.length - 1)
  const frameLines = Math.ceil(pfnCount / FRAMES_PER_LINE)
  const framesTop = gridH + 28
  const height = (pfnCount ? framesTop + 18 + frameLines * (FRAME + 16) : gridH) + 8
  const width = Math.max(width0 + note, LABEL + FRAMES_PER_LINE * FRAME + 20)
  const hiRows = new Set(highlight?.rows ?? [])
  const hiPfns = new Set(highlight?.pfns ?? [])
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="memory-map" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" style="max-width: 100%; height: auto" font-family="ui-monospace, monospace" font-size="11">`,
  ]
  lanes.forEach((lane, k) => out.push(`<text x="${LABEL + k * LANE + 4}" y="16" font-weight="bold">${esc(laneLabel(lane))}</text>`))
  for (let row = 0; row < map.rows; row++) {
    const y = HEAD + row * ROW
    const gfn = (map.firstGfn ?? 0) + row
    out.push(`<text x="4" y="${y + 15}" class="gfn-label">gfn ${hex(gfn)}</text>`)
  }
  lanes.forEach((lane, k) => {
    const x = LABEL + k * LANE
    let row = 0
    while (row < map.rows) {
      const first = laneCell(lane, w, row, map)
      const group = first.group
      let span = 1
      const pfns = [...(first.cell.pfns ?? [])]
      for (let next = laneCell(lane, w, row + 1, map); group !== undefined && row + span < map.rows && next.group === group; next = laneCell(lane, w, row + span, map)) {
        pfns.push(...(next.cell.pfns ?? []))
        span++
      }
      // A huge leaf or folio: one box over its rows, its pfns as a range.
      const lo = Math.min(...pfns)
      const hi = Math.max(...pfns)
      const cell: MapCell & { note?: string } =
        span > 1 && pfns.length > 1 && hi > lo ? { ...first.cell, text: first.cell.text.replace(`pfn ${hex(lo)}`, `pfn ${hex(lo)}..${hex(hi)}`), pfns } : { ...first.cell, pfns }
      const y = HEAD + row * ROW
      const onRow = Array.from({ length: span }, (_, i) => row + i).some((r) => hiRows.has(r))
      // The entry named: a cell showing a named pfn on a named row (or anywhere, when no row is named); with no pfn named, the leaf on the named row.
      const hot = cell.kind !== 'none' && (hiPfns.size > 0 ? (cell.pfns ?? []).some((p) => hiPfns.has(p)) && (onRow || hiRows.size === 0) : onRow && lane.kind === 'leaf')
      const rows = Array.from({ length: span }, (_, i) => row + i).join(' ')
      out.push(
        `<g class="cell${hot ? ' violating' : ''}" data-lane="${esc(laneLabel(lane))}" data-rows="${rows}"${cell.pfns?.length ? ` data-pfns="${cell.pfns.join(' ')}"` : ''}>` +
          `<rect x="${x + 2}" y="${y + 1}" width="${LANE - 4}" height="${span * ROW - 2}" rx="3" fill="${FILL[cell.kind]}" stroke="${hot ? '#dc2626' : '#9ca3af'}" stroke-width="${hot ? 3 : 1}"${cell.kind === 'freed' ? ' stroke-dasharray="3 2"' : ''}/>` +
          `<text x="${x + 7}" y="${y + 15}">${esc(cell.text)}</text>` +
          (span > 1 && cell.note ? `<text x="${x + 7}" y="${y + 15 + ROW - 2}" font-size="9" fill="#374151">${esc(cell.note)}</text>` : '') +
          '</g>',
      )
      row += span
    }
  })
  // Huge-page boundaries across every lane.
  if (map.hugePages && map.hugePages > 1) {
    for (let row = 0; row <= map.rows; row++) {
      if (((map.firstGfn ?? 0) + row) % map.hugePages === 0) {
        out.push(`<line class="huge-boundary" x1="0" x2="${width0}" y1="${HEAD + row * ROW}" y2="${HEAD + row * ROW}" stroke="#111827" stroke-width="2"/>`)
      }
    }
  }
  for (const r of hiRows) {
    out.push(`<rect class="violating-row" data-row="${r}" x="1" y="${HEAD + r * ROW}" width="${width0 - 2}" height="${ROW}" fill="none" stroke="#dc2626" stroke-width="2"/>`)
  }
  if (highlight) {
    const at = hiRows.size ? HEAD + Math.min(...hiRows) * ROW : HEAD
    const lines = wrap(highlight.message, 32)
    out.push(
      `<g class="violation-note"><rect x="${width0 + 10}" y="${at}" width="${NOTE - 14}" height="${lines.length * 14 + 10}" fill="#fef2f2" stroke="#dc2626"/>` +
        lines.map((l, i) => `<text x="${width0 + 16}" y="${at + 16 + i * 14}" fill="#991b1b">${esc(l)}</text>`).join('') +
        '</g>',
    )
  }
  if (pfnCount) {
    out.push(`<text x="4" y="${framesTop}" font-weight="bold">host memory by pfn (folios)</text>`)
    let pfn = 1
    while (pfn < frames.length) {
      const kind = FRAME_KIND_NAMES[frames[pfn]] ?? 'unused'
      let span = 1
      // A huge folio: its pages from the aligned head, drawn as one box with its order.
      if (kind === 'huge' && map.hugePages) while (span < map.hugePages && pfn + span < frames.length && frames[pfn + span] === frames[pfn] && (pfn + span) % map.hugePages !== 0) span++
      for (let k = 0; k < span; k++) {
        const p = pfn + k
        const line = Math.floor((p - 1) / FRAMES_PER_LINE)
        const x = LABEL + ((p - 1) % FRAMES_PER_LINE) * FRAME
        const y = framesTop + 12 + line * (FRAME + 16)
        const hot = hiPfns.has(p)
        const fill = kind === 'huge' ? FILL.huge : kind === 'small' ? FILL.small : kind === 'freed' ? FILL.freed : '#ffffff'
        out.push(
          `<g class="frame${hot ? ' violating' : ''}" data-pfn="${p}" data-folio="${kind}"><rect x="${x + 1}" y="${y}" width="${FRAME - 2}" height="${FRAME - 8}" fill="${fill}" stroke="${hot ? '#dc2626' : '#9ca3af'}" stroke-width="${hot ? 3 : 1}"${kind === 'freed' || kind === 'unused' ? ' stroke-dasharray="3 2"' : ''}/>` +
            `<text x="${x + 4}" y="${y + 15}" font-size="9">${hex(p)}</text></g>`,
        )
      }
      if (kind === 'huge' && span > 1) {
        const line = Math.floor((pfn - 1) / FRAMES_PER_LINE)
        const x = LABEL + ((pfn - 1) % FRAMES_PER_LINE) * FRAME
        const y = framesTop + 12 + line * (FRAME + 16)
        const order = Math.log2(span)
        out.push(`<g class="folio-boundary"><rect x="${x}" y="${y - 2}" width="${Math.min(span, FRAMES_PER_LINE) * FRAME}" height="${FRAME - 4}" fill="none" stroke="#15803d" stroke-width="2"/><text x="${x + 2}" y="${y + FRAME + 6}" font-size="9" fill="#15803d">order ${order}</text></g>`)
      }
      pfn += span
    }
    out.push(`<text x="4" y="${framesTop + 30}" font-size="9">pfn</text>`)
  }
  out.push('</svg>')
  return out.join('')
}
