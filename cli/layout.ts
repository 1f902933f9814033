import type { BindingPolicy } from '../model/kvm/gmem-binding-rules.js'
import { analyzeSlot, BEST_CASE_ASSUMPTION, POLICIES, totals, X86_LEVELS, type PolicyCount, type SlotAnalysis } from '../model/kvm/layout-analysis.js'
import { readInputFile } from '../traces/read.js'
import { parseQemuMemslotTrace, PAGE_SHIFT, PAGE_SIZE, type QemuMemslot } from '../model/kvm/qemu-memslot-trace.js'
import { table } from './format.js'

const WIDTH = 100

/** A 4 KiB page number as a byte address in hex (exact past 2^53). */
const addr = (page: number): string => `0x${(BigInt(page) << BigInt(PAGE_SHIFT)).toString(16)}`
/** The last byte of the page range ending before `endPage`. */
const lastByte = (endPage: number): string => `0x${((BigInt(endPage) << BigInt(PAGE_SHIFT)) - 1n).toString(16)}`
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
const pct = (share: number): string => `${(share * 100).toFixed(2)}%`

/** The largest binary unit the size is a whole number of. */
function sizeText(npages: number): string {
  if (npages % 262144 === 0) return `${npages / 262144} GiB`
  if (npages % 256 === 0) return `${npages / 256} MiB`
  return `${npages * (PAGE_SIZE / 1024)} KiB`
}

function backingText(s: QemuMemslot): string {
  return s.gmem ? `gmem ${s.gmem.fd}+${addr(s.gmem.pgoff)}` : `ua ${addr(s.uaPage)}`
}

/** Words wrapped to the width, continuation lines indented by two. */
function wrap(text: string): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > WIDTH) {
      lines.push(line)
      line = `  ${word}`
    } else line = line === '' ? word : `${line} ${word}`
  }
  return [...lines, line]
}

/** Right-aligns columns [from, to) on their '%', an unsafe marker '!' hanging past it. */
function rightAlignShares(rows: string[][], from: number, to: number): void {
  for (let c = from; c < to; c++) {
    const body = (s: string): string => s.replace(/!$/, '')
    const width = Math.max(...rows.map((r) => body(r[c]).length))
    for (const r of rows) r[c] = body(r[c]).padStart(width) + r[c].slice(body(r[c]).length)
  }
}

/**
 * Notes on the slots whose gfn and ua are not congruent at a level that has aligned ranges inside the
 * slot: KVM's ua rule, applied above under every policy (gmem slots included), zeroes that level there.
 */
function uaNotes(slots: readonly QemuMemslot[], analyses: readonly SlotAnalysis[], label: (s: QemuMemslot) => string): string[] {
  const notes: string[] = []
  slots.forEach((s, i) => {
    const levels = analyses[i].levels.filter((l) => !l.uaCongruent && l.alignedBlocks > 0)
    if (levels.length === 0) return
    const names = levels.map((l) => l.level).join(' and ')
    notes.push(
      `note: slot ${label(s)}: gpa ${addr(s.baseGfn)} and ua ${addr(s.uaPage)} are not congruent modulo ${names}; ` +
        `x86 KVM (kvm_alloc_memslot_metadata) then disallows ${names} leaves in the whole slot` +
        `${s.gmem ? ', private faults included' : ''}. Applied above: its ${names} shares are 0% under every policy.`,
    )
  })
  return notes
}

/** `mapcheck layout FILE`: the memslots a QEMU kvm_set_user_memory trace leaves, and their huge-leaf coverage per binding policy. */
export function layoutCommand(file: string, json: boolean): number {
  const trace = parseQemuMemslotTrace(readInputFile(file), file)
  const analyses = trace.slots.map((s) => analyzeSlot(s, X86_LEVELS))
  const total = totals(analyses, X86_LEVELS)
  const ops = (op: string) => trace.events.filter((e) => e.op === op).length
  const multiAs = trace.slots.some((s) => s.addrSpace !== 0)
  const label = (s: QemuMemslot): string => (multiAs ? `${s.addrSpace}:${s.slot}` : String(s.slot))
  const notes = uaNotes(trace.slots, analyses, label)

  if (json) {
    const out = {
      file,
      pageSize: PAGE_SIZE,
      assumption: BEST_CASE_ASSUMPTION,
      levels: X86_LEVELS,
      policies: POLICIES,
      events: trace.events,
      slots: trace.slots.map((s, i) => ({
        addrSpace: s.addrSpace,
        slot: s.slot,
        line: s.line,
        flags: s.flags,
        gpa: { start: addr(s.baseGfn), end: addr(s.baseGfn + s.npages) },
        size: addr(s.npages),
        baseGfn: s.baseGfn,
        npages: s.npages,
        backing: s.gmem
          ? { kind: 'gmem', fd: s.gmem.fd, offset: addr(s.gmem.pgoff), pgoff: s.gmem.pgoff, ua: addr(s.uaPage) }
          : { kind: 'user', ua: addr(s.uaPage) },
        levels: analyses[i].levels,
      })),
      totals: total,
      notes,
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    return 0
  }

  const cell = (c: PolicyCount): string => `${pct(c.share)}${c.unsafePages > 0 ? '!' : ''}`
  const shown: BindingPolicy[] = ['whole-binding', 'interior-hugepages']
  const abbrev: Record<string, string> = { 'whole-binding': 'wb', 'interior-hugepages': 'ih' }
  const noClamp = (levels: readonly { level: string; policies: Readonly<Record<BindingPolicy, PolicyCount>> }[]): string => {
    const unsafe = levels.filter((l) => l.policies['no-clamp'].unsafePages > 0).map((l) => l.level)
    return unsafe.length > 0 ? `UNSAFE ${unsafe.join(',')}` : 'safe'
  }
  const header = [multiAs ? 'as:slot' : 'slot', 'GPA range', 'backing', 'size']
  for (const p of shown) for (const l of X86_LEVELS) header.push(`${abbrev[p]} ${l.name}`)
  header.push('no-clamp')
  const rows: string[][] = [header]
  trace.slots.forEach((s, i) => {
    const row = [label(s), `${addr(s.baseGfn)}-${lastByte(s.baseGfn + s.npages)}`, backingText(s), sizeText(s.npages)]
    for (const p of shown) for (const l of analyses[i].levels) row.push(cell(l.policies[p]))
    row.push(noClamp(analyses[i].levels))
    rows.push(row)
  })
  const totalRow = ['total', '', plural(trace.slots.length, 'slot'), sizeText(total.npages)]
  for (const p of shown) for (const l of total.levels) totalRow.push(cell(l.policies[p]))
  totalRow.push(noClamp(total.levels))
  rows.push(totalRow)
  rightAlignShares(rows, 4, 4 + shown.length * X86_LEVELS.length)

  const lines = [
    ...wrap(
      `${file}: ${plural(trace.slots.length, 'memslot')} (${plural(trace.events.length, 'kvm_set_user_memory line')}, ` +
        `${plural(ops('delete'), 'deletion')}, ${ops('failed')} failed)`,
    ),
    ...wrap(`Share of each slot's 4 KiB pages in aligned ranges mapped by one huge leaf, ${BEST_CASE_ASSUMPTION}.`),
    '',
    table(rows),
    '',
    "every policy: KVM's own limits first (aligned range inside the slot, gfn and ua congruent)",
    'wb = whole-binding (the 2023 patch: pgoff and npages multiples of the folio size)',
    'ih = interior-hugepages (gfn and file index congruent)',
    'no-clamp = the folio order unchecked; UNSAFE at a level: its leaves map the wrong file pages',
    ...(rows.some((r) => r.some((c) => c.endsWith('!'))) ? ['! = some of these leaves map the wrong file pages (gfn and file index not congruent)'] : []),
    ...(trace.slots.some((s) => !s.gmem) ? ["ua slots: KVM's own limits alone, whatever the policy"] : []),
    ...(multiAs ? ['as:slot = AddrSpace#:Slot#'] : []),
    ...notes.flatMap(wrap),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
