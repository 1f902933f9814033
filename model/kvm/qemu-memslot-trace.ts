/**
 * Reads the memslot layout out of a QEMU trace: the `kvm_set_user_memory`
 * events QEMU prints for every KVM_SET_USER_MEMORY_REGION(2) ioctl (run QEMU
 * with `-trace kvm_set_user_memory`). Seed 003's example is such a trace.
 *
 * Accepted lines, one event each:
 *
 *   kvm_set_user_memory AddrSpace#0 Slot#5 flags=0x4 gpa=0x100000 size=0x7ff00000 ua=0x7f24afd00000 ret=0 restricted_fd=19 restricted_offset=0x100000
 *
 * - the event name opens the line (after blanks, and after the `PID@SECS.USECS:`
 *   prefix of QEMU's log backend with `-msg timestamp=on`); any other line,
 *   including a quoted one (`> kvm_set_user_memory ...` in a mail), is ignored;
 * - then space-separated fields in any order: `AddrSpace#N`, `Slot#N`,
 *   `key=value`. Required: Slot#, flags, gpa, size, ua, ret. Without
 *   AddrSpace# (QEMU before 6.1), Slot# is the ioctl's slot id, whose upper 16
 *   bits are the address space (KVM's `as_id << 16 | id`);
 * - the guest_memfd binding is `restricted_fd`/`restricted_offset` (the
 *   2023 SNP/UPM QEMU branch of the seed) or `guest_memfd`/`guest_memfd_offset`
 *   (upstream QEMU 9.0+). Unknown `key=value` fields are skipped.
 *
 * Which slots are guest_memfd-bound: the one KVM reads, flags bit 2
 * (KVM_MEM_GUEST_MEMFD, formerly KVM_MEM_PRIVATE). With it set, the fd field
 * must be a non-negative fd (0 included: a valid fd) and the offset present;
 * without it the slot is plain user memory whatever the fd fields say (KVM
 * ignores them; upstream QEMU prints guest_memfd=-1 for such slots).
 *
 * Semantics, per (AddrSpace, Slot) key, in file order: ret != 0 — the ioctl
 * failed, nothing changes; size=0 — the slot is deleted (a no-op if the trace
 * never created it: it may have started late); otherwise the slot is created,
 * or replaced if it exists (KVM's move and flags-only updates, or a
 * re-creation after a deletion). The result is the final set of slots.
 *
 * A `kvm_set_user_memory` line that cannot be read (a required field missing
 * or repeated, bad hex, a non-numeric slot, a stray token), or a successful
 * one KVM would have refused (a value not 4 KiB-aligned, a range past 2^64,
 * flags bit 2 without an fd, a slot overlapping another of its address
 * space), is a `BadInput`:
 * `FILE:LINE: malformed kvm_set_user_memory line: <what>`. A file with no
 * `kvm_set_user_memory` line at all is one too (most likely the wrong file).
 *
 * Addresses are kept as 4 KiB page numbers: exact as JS numbers (2^64 bytes
 * is 2^52 pages) where byte values past 2^53 would not be.
 */
import { readFileSync } from 'node:fs'
import { BadInput } from '../../explorer/errors.js'

export const PAGE_SHIFT = 12
export const PAGE_SIZE = 1 << PAGE_SHIFT

/** flags bit 2: KVM_MEM_GUEST_MEMFD (upstream), KVM_MEM_PRIVATE in the 2023 branch. */
export const KVM_MEM_GUEST_MEMFD = 0x4

/** One memslot as the last successful ioctl on its key left it; addresses in 4 KiB pages. */
export interface QemuMemslot {
  readonly addrSpace: number
  readonly slot: number
  readonly flags: number
  readonly baseGfn: number
  readonly npages: number
  /** userspace_addr >> 12 */
  readonly uaPage: number
  /** The guest_memfd binding (flags bit 2), pgoff = offset / 4096; null for plain user memory. */
  readonly gmem: { readonly fd: number; readonly pgoff: number } | null
  /** 1-based line of the ioctl that made the slot what it is. */
  readonly line: number
}

export type MemslotOp = 'create' | 'replace' | 'delete' | 'delete-absent' | 'failed'

export interface MemslotEvent {
  readonly line: number
  readonly addrSpace: number
  readonly slot: number
  readonly op: MemslotOp
}

export interface MemslotTrace {
  /** The final slots, by AddrSpace then slot number. */
  readonly slots: readonly QemuMemslot[]
  /** Every kvm_set_user_memory line, in order, with what it did. */
  readonly events: readonly MemslotEvent[]
}

const EVENT = /^\s*(?:\d+@\d+\.\d+:)?kvm_set_user_memory(?:\s+(.*))?$/
const HEX = /^0x[0-9a-fA-F]+$/
const DEC = /^\d+$/
const SIGNED = /^-?\d+$/
const U64_LIMIT = 1n << 64n

type Fields = Map<string, string>

class Malformed extends Error {}

function hex(fields: Fields, key: string, required: boolean): bigint | undefined {
  const v = fields.get(key)
  if (v === undefined) {
    if (required) throw new Malformed(`missing ${key}=`)
    return undefined
  }
  if (!HEX.test(v)) throw new Malformed(`${key}=${v} is not hex (0x...)`)
  const n = BigInt(v)
  if (n >= U64_LIMIT) throw new Malformed(`${key}=${v} does not fit in 64 bits`)
  return n
}

function signed(fields: Fields, key: string): number | undefined {
  const v = fields.get(key)
  if (v === undefined) return undefined
  if (!SIGNED.test(v) || !Number.isSafeInteger(Number(v))) throw new Malformed(`${key}=${v} is not an integer`)
  return Number(v)
}

/** The first of `keys` present (aliases: the 2023 branch's and upstream's names); two present is ambiguous. */
function alias(fields: Fields, keys: readonly string[]): string | undefined {
  const present = keys.filter((k) => fields.has(k))
  if (present.length > 1) throw new Malformed(`both ${present.join(' and ')}`)
  return present[0]
}

function pages(key: string, bytes: bigint): number {
  if (bytes % BigInt(PAGE_SIZE) !== 0n) throw new Malformed(`${key}=0x${bytes.toString(16)} is not 4 KiB-aligned, yet ret=0 (KVM refuses it)`)
  return Number(bytes >> BigInt(PAGE_SHIFT))
}

interface Parsed {
  readonly addrSpace: number
  readonly slot: number
  readonly ret: number
  /** null: a deletion (size=0) */
  readonly memslot: Omit<QemuMemslot, 'line'> | null
}

function parseEvent(rest: string): Parsed {
  const fields: Fields = new Map()
  let addrSpace: number | undefined
  let slotId: number | undefined
  for (const token of rest.split(/\s+/).filter((t) => t !== '')) {
    const m = /^(AddrSpace|Slot)#(.*)$/.exec(token) ?? /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(token)
    if (!m) throw new Malformed(`unexpected '${token}'`)
    const [, key, value] = m
    if (key === 'AddrSpace' || key === 'Slot') {
      if (!DEC.test(value) || !Number.isSafeInteger(Number(value))) throw new Malformed(`${key}#${value} is not a number`)
      if ((key === 'AddrSpace' ? addrSpace : slotId) !== undefined) throw new Malformed(`${key}# given twice`)
      if (key === 'AddrSpace') addrSpace = Number(value)
      else slotId = Number(value)
    } else {
      if (fields.has(key)) throw new Malformed(`${key}= given twice`)
      fields.set(key, value)
    }
  }
  if (slotId === undefined) throw new Malformed('missing Slot#')
  // QEMU before the AddrSpace# field printed the ioctl's slot id, as_id << 16 | slot.
  const key = addrSpace === undefined ? { addrSpace: Math.floor(slotId / 0x10000), slot: slotId % 0x10000 } : { addrSpace, slot: slotId }
  const flags = hex(fields, 'flags', true)!
  if (flags >= 1n << 32n) throw new Malformed(`flags=${fields.get('flags')} does not fit in 32 bits`)
  const gpa = hex(fields, 'gpa', true)!
  const size = hex(fields, 'size', true)!
  const ua = hex(fields, 'ua', true)!
  const ret = signed(fields, 'ret')
  if (ret === undefined) throw new Malformed('missing ret=')
  const fdKey = alias(fields, ['restricted_fd', 'guest_memfd'])
  const offsetKey = alias(fields, ['restricted_offset', 'guest_memfd_offset'])
  const fd = fdKey === undefined ? undefined : signed(fields, fdKey)
  const offset = offsetKey === undefined ? undefined : hex(fields, offsetKey, true)
  if (ret !== 0 || size === 0n) return { ...key, ret, memslot: null }

  if (gpa + size > U64_LIMIT) throw new Malformed(`gpa=0x${gpa.toString(16)} + size=0x${size.toString(16)} runs past 2^64`)
  let gmem: QemuMemslot['gmem'] = null
  if ((Number(flags) & KVM_MEM_GUEST_MEMFD) !== 0) {
    // upstream prints the u32 fd with %d: -1 for none; a %u rendering would give 4294967295.
    if (fd === undefined || fd < 0 || fd > 0x7fffffff) {
      throw new Malformed(`flags=${fields.get('flags')} has KVM_MEM_GUEST_MEMFD (0x4) but ${fd === undefined ? 'no restricted_fd=/guest_memfd=' : `${fdKey}=${fd} is no fd`}`)
    }
    if (offset === undefined) throw new Malformed(`flags=${fields.get('flags')} has KVM_MEM_GUEST_MEMFD (0x4) but no restricted_offset=/guest_memfd_offset=`)
    gmem = { fd, pgoff: pages(offsetKey!, offset) }
  }
  return {
    ...key,
    ret,
    memslot: { ...key, flags: Number(flags), baseGfn: pages('gpa', gpa), npages: pages('size', size), uaPage: pages('ua', ua), gmem },
  }
}

/** Parses a trace's text; `file` names it in errors. */
export function parseQemuMemslotTrace(text: string, file: string): MemslotTrace {
  const live = new Map<string, QemuMemslot>()
  const events: MemslotEvent[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = EVENT.exec(lines[i].replace(/\r$/, ''))
    if (!m) continue
    const line = i + 1
    let parsed: Parsed
    try {
      parsed = parseEvent(m[1] ?? '')
    } catch (e) {
      if (e instanceof Malformed) throw new BadInput(`${file}:${line}: malformed kvm_set_user_memory line: ${e.message}`)
      throw e
    }
    const { addrSpace, slot } = parsed
    const key = `${addrSpace}/${slot}`
    let op: MemslotOp
    if (parsed.ret !== 0) op = 'failed'
    else if (parsed.memslot === null) {
      op = live.delete(key) ? 'delete' : 'delete-absent'
    } else {
      op = live.has(key) ? 'replace' : 'create'
      // KVM refuses a slot overlapping another of its address space (-EEXIST): a successful one is a malformed trace.
      const m = parsed.memslot
      for (const [other, o] of live) {
        if (other === key || o.addrSpace !== addrSpace || o.baseGfn >= m.baseGfn + m.npages || m.baseGfn >= o.baseGfn + o.npages) continue
        throw new BadInput(
          `${file}:${line}: malformed kvm_set_user_memory line: Slot#${slot} overlaps slot ${o.slot} (line ${o.line}) in AddrSpace#${addrSpace}, yet ret=0 (KVM refuses it with -EEXIST)`,
        )
      }
      live.set(key, { ...m, line })
    }
    events.push({ line, addrSpace, slot, op })
  }
  if (events.length === 0) throw new BadInput(`${file}: no kvm_set_user_memory lines (expected QEMU's output with -trace kvm_set_user_memory)`)
  const slots = [...live.values()].sort((a, b) => a.addrSpace - b.addrSpace || a.slot - b.slot)
  return { slots, events }
}

/** Reads and parses a trace file; any problem is a one-line `BadInput` naming the file. */
export function loadQemuMemslotTrace(file: string): MemslotTrace {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new BadInput(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  return parseQemuMemslotTrace(text, file)
}
