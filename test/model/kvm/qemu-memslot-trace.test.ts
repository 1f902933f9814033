import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BadInput } from '../../../explorer/errors.js'
import { loadQemuMemslotTrace, parseQemuMemslotTrace, type MemslotTrace } from '../../../model/kvm/qemu-memslot-trace.js'

const fixture = join(import.meta.dirname, '../../fixtures/seed-003-qemu.log')
const page = (bytes: number): number => bytes / 4096

/** One trace line as QEMU prints it (the seed's branch: restricted_fd / restricted_offset). */
function line(slot: number, f: { as?: number; flags?: string; gpa: string; size: string; ua?: string; ret?: number; fd?: number; off?: string }): string {
  return (
    `kvm_set_user_memory AddrSpace#${f.as ?? 0} Slot#${slot} flags=${f.flags ?? '0x4'} gpa=${f.gpa} size=${f.size} ua=${f.ua ?? '0x7f0000000000'} ` +
    `ret=${f.ret ?? 0} restricted_fd=${f.fd ?? 19} restricted_offset=${f.off ?? '0x0'}`
  )
}

const parse = (...lines: string[]): MemslotTrace => parseQemuMemslotTrace(lines.join('\n'), 't.log')

function expectMalformed(lines: string[], lineNo: number, what: RegExp): void {
  let error: unknown
  try {
    parse(...lines)
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(BadInput)
  const message = (error as Error).message
  expect(message).toMatch(new RegExp(`^t\\.log:${lineNo}: malformed kvm_set_user_memory line: `))
  expect(message).toMatch(what)
  expect(message).not.toContain('\n')
}

describe('the seed 003 trace (fixture)', () => {
  const trace = loadQemuMemslotTrace(fixture)
  const text = readFileSync(fixture, 'utf8').split('\n')
  const lineOf = (needle: string): number => text.findIndex((l) => l.startsWith('kvm_set_user_memory') && l.includes(needle)) + 1

  it('leaves slots 0, 3, 4 and 5, all in AddrSpace#0', () => {
    expect(trace.slots.map((s) => [s.addrSpace, s.slot])).toEqual([
      [0, 0],
      [0, 3],
      [0, 4],
      [0, 5],
    ])
  })

  it('slot 0: created for all of RAM, deleted, re-created as [0, 0xc0000)', () => {
    expect(trace.events.filter((e) => e.slot === 0).map((e) => [e.op, e.line])).toEqual([
      ['create', lineOf('Slot#0 flags=0x4 gpa=0x0 size=0x80000000')],
      ['delete', lineOf('size=0x0 ')],
      ['create', lineOf('Slot#0 flags=0x4 gpa=0x0 size=0xc0000')],
    ])
    expect(trace.slots[0]).toEqual({
      addrSpace: 0,
      slot: 0,
      flags: 0x4,
      baseGfn: 0,
      npages: page(0xc0000),
      uaPage: page(0x7f24afc00000),
      gmem: { fd: 19, pgoff: 0 },
      line: lineOf('Slot#0 flags=0x4 gpa=0x0 size=0xc0000'),
    })
  })

  it('slot 5: the rest of low RAM, same fd 19 at offset 0x100000', () => {
    expect(trace.slots[3]).toMatchObject({
      slot: 5,
      flags: 0x4,
      baseGfn: page(0x100000),
      npages: page(0x7ff00000),
      uaPage: page(0x7f24afd00000),
      gmem: { fd: 19, pgoff: page(0x100000) },
    })
  })

  it("slot 5's page numbers, as KVM's ua rule reads them: gpa and ua congruent modulo 2M, not 1G", () => {
    const s5 = trace.slots[3]
    const raw = text[s5.line - 1]
    const bytes = (key: string): bigint => BigInt(new RegExp(`\\b${key}=(0x[0-9a-f]+)\\b`).exec(raw)![1])
    const [gpa, ua] = [bytes('gpa'), bytes('ua')]
    expect([BigInt(s5.baseGfn), BigInt(s5.uaPage)]).toEqual([gpa >> 12n, ua >> 12n])
    // KVM's (base_gfn ^ ugfn) & (level - 1) on the parsed page numbers, against the raw bytes' difference.
    const kvmRule = (level: number): boolean => ((BigInt(s5.baseGfn) ^ BigInt(s5.uaPage)) & BigInt(level - 1)) === 0n
    const bytesRule = (level: number): boolean => (ua - gpa) % (BigInt(level) << 12n) === 0n
    expect([kvmRule(512), kvmRule(262144)]).toEqual([bytesRule(512), bytesRule(262144)])
    expect([kvmRule(512), kvmRule(262144)]).toEqual([true, false])
  })

  it('the legacy regions: slots 3 and 4, read-only (flags 0x6), their own fds', () => {
    expect(trace.slots[1]).toMatchObject({ flags: 0x6, baseGfn: page(0xc0000), npages: page(0x20000), gmem: { fd: 33, pgoff: 0 } })
    expect(trace.slots[2]).toMatchObject({ flags: 0x6, baseGfn: page(0xe0000), npages: page(0x20000), gmem: { fd: 31, pgoff: 0 } })
  })

  it('reads only the kvm_set_user_memory lines: the others are ignored', () => {
    const traceLines = text.filter((l) => l.startsWith('kvm_set_user_memory '))
    expect(text.length).toBeGreaterThan(traceLines.length)
    expect(trace.events).toHaveLength(traceLines.length)
    expect(trace.events.every((e) => text[e.line - 1].startsWith('kvm_set_user_memory '))).toBe(true)
  })
})

describe('slot lifetimes', () => {
  it('a later line re-creates a deleted slot; a line on a live slot replaces it', () => {
    const t = parse(
      line(1, { gpa: '0x0', size: '0x200000' }),
      line(1, { gpa: '0x0', size: '0x0' }),
      line(1, { gpa: '0x400000', size: '0x200000' }),
      line(2, { gpa: '0x800000', size: '0x200000', flags: '0x4' }),
      line(2, { gpa: '0xa00000', size: '0x200000', flags: '0x5' }),
    )
    expect(t.events.map((e) => e.op)).toEqual(['create', 'delete', 'create', 'create', 'replace'])
    expect(t.slots.map((s) => [s.slot, s.baseGfn, s.flags, s.line])).toEqual([
      [1, page(0x400000), 0x4, 3],
      [2, page(0xa00000), 0x5, 5],
    ])
  })

  it('ret != 0 lines change nothing, even when KVM would refuse their values', () => {
    const t = parse(
      line(1, { gpa: '0x0', size: '0x200000' }),
      line(1, { gpa: '0x0', size: '0x0', ret: -22 }),
      line(2, { gpa: '0x1234', size: '0x200000', ret: -22 }),
    )
    expect(t.events.map((e) => e.op)).toEqual(['create', 'failed', 'failed'])
    expect(t.slots.map((s) => s.slot)).toEqual([1])
  })

  it('deleting a slot the trace never created is a no-op (the trace may start late)', () => {
    const t = parse(line(7, { gpa: '0x0', size: '0x0' }))
    expect(t.events).toEqual([{ line: 1, addrSpace: 0, slot: 7, op: 'delete-absent' }])
    expect(t.slots).toEqual([])
  })

  it('keys slots by AddrSpace and Slot', () => {
    const t = parse(line(0, { gpa: '0x0', size: '0x1000' }), line(0, { as: 1, gpa: '0x0', size: '0x2000' }), line(0, { gpa: '0x0', size: '0x0' }))
    expect(t.slots.map((s) => [s.addrSpace, s.slot, s.npages])).toEqual([[1, 0, 2]])
  })
})

describe('line formats', () => {
  it("accepts upstream QEMU's guest_memfd / guest_memfd_offset, and guest_memfd=-1 for plain slots", () => {
    const t = parse(
      'kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 size=0x200000 ua=0x7f0000000000 guest_memfd=20 guest_memfd_offset=0x200000 ret=0',
      'kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x0 gpa=0x200000 size=0x200000 ua=0x7f0000200000 guest_memfd=-1 guest_memfd_offset=0x0 ret=0',
    )
    expect(t.slots.map((s) => s.gmem)).toEqual([{ fd: 20, pgoff: page(0x200000) }, null])
  })

  it('the fd fields without flags bit 2 (KVM_MEM_GUEST_MEMFD) do not bind: KVM ignores them', () => {
    expect(parse(line(0, { flags: '0x0', gpa: '0x0', size: '0x1000', fd: 19 })).slots[0].gmem).toBeNull()
    expect(parse(line(0, { flags: '0x2', gpa: '0x0', size: '0x1000', fd: 0 })).slots[0].gmem).toBeNull()
    // fd 0 is a valid fd when the flag says so.
    expect(parse(line(0, { flags: '0x4', gpa: '0x0', size: '0x1000', fd: 0 })).slots[0].gmem).toEqual({ fd: 0, pgoff: 0 })
  })

  it('a trace without gmem fields at all (pre-guest_memfd QEMU): plain slots', () => {
    const t = parse('kvm_set_user_memory AddrSpace#0 Slot#2 flags=0x0 gpa=0x100000 size=0x7ff00000 ua=0x7f24afd00000 ret=0')
    expect(t.slots).toMatchObject([{ slot: 2, baseGfn: page(0x100000), gmem: null }])
  })

  it('without AddrSpace# (QEMU before 6.1) Slot# is as_id << 16 | slot', () => {
    const t = parse('kvm_set_user_memory Slot#65539 flags=0x0 gpa=0x0 size=0x1000 ua=0x7f0000000000 ret=0')
    expect(t.slots).toMatchObject([{ addrSpace: 1, slot: 3 }])
  })

  it('a successful slot overlapping another of its address space is malformed (KVM returns -EEXIST); other address spaces, a replaced slot and a failed ioctl are not', () => {
    expectMalformed([line(1, { gpa: '0x0', size: '0x2000' }), line(2, { gpa: '0x1000', size: '0x1000' })], 2, /Slot#2 overlaps slot 1 \(line 1\) in AddrSpace#0/)
    expectMalformed([line(1, { gpa: '0x1000', size: '0x1000' }), line(2, { gpa: '0x0', size: '0x4000' })], 2, /overlaps slot 1/)
    const t = parse(
      line(1, { gpa: '0x0', size: '0x2000' }),
      line(2, { gpa: '0x0', size: '0x2000', as: 1 }),
      line(1, { gpa: '0x1000', size: '0x2000' }),
      line(3, { gpa: '0x1000', size: '0x1000', ret: -17 }),
      line(3, { gpa: '0x3000', size: '0x1000' }),
    )
    expect(t.slots.map((s) => [s.addrSpace, s.slot])).toEqual([
      [0, 1],
      [0, 3],
      [1, 2],
    ])
  })

  it("takes the log backend's PID@TIME: prefix; ignores quoted lines and other events", () => {
    const t = parse(
      `12345@1696262400.123456:${line(1, { gpa: '0x0', size: '0x1000' })}`,
      `> ${line(2, { gpa: '0x0', size: '0x1000' })}`,
      `^ ${line(3, { gpa: '0x0', size: '0x1000' })}`,
      `kvm_set_user_memory_v2 Slot#4 whatever`,
      'kvm_vm_ioctl type 0x4020ae46, arg 0x7ffd4b0d4d80',
      `  ${line(5, { gpa: '0x1000', size: '0x1000' })}\r`,
    )
    expect(t.events.map((e) => [e.line, e.slot])).toEqual([
      [1, 1],
      [6, 5],
    ])
  })

  it('keeps 64-bit addresses exact (as page numbers)', () => {
    const t = parse(line(0, { flags: '0x0', gpa: '0xfffffffffff00000', size: '0x100000', ua: '0xfffffffffff00000' }))
    expect(t.slots[0]).toMatchObject({ baseGfn: 0xfffffffffff00, npages: 0x100, uaPage: 0xfffffffffff00 })
  })
})

describe('errors', () => {
  const good = line(0, { gpa: '0x0', size: '0x1000' })
  const cases: [string, string, RegExp][] = [
    ['missing gpa', 'kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 size=0x1000 ua=0x7f0000000000 ret=0', /missing gpa=/],
    ['missing size', 'kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x0 ua=0x7f0000000000 ret=0', /missing size=/],
    ['missing ua', 'kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x0 size=0x1000 ret=0', /missing ua=/],
    ['missing ret', 'kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x0 size=0x1000 ua=0x0', /missing ret=/],
    ['missing Slot#', 'kvm_set_user_memory AddrSpace#0 flags=0x4 gpa=0x0 size=0x1000 ua=0x0 ret=0', /missing Slot#/],
    ['an empty line', 'kvm_set_user_memory', /missing Slot#/],
    ['bad hex', line(1, { gpa: '0x10g000', size: '0x1000' }), /gpa=0x10g000 is not hex/],
    ['hex without 0x', line(1, { gpa: '100000', size: '0x1000' }), /gpa=100000 is not hex/],
    ['past 64 bits', line(1, { gpa: '0x10000000000000000', size: '0x1000' }), /does not fit in 64 bits/],
    ['non-numeric slot', line(1, { gpa: '0x0', size: '0x1000' }).replace('Slot#1', 'Slot#one'), /Slot#one is not a number/],
    ['non-numeric ret', line(1, { gpa: '0x0', size: '0x1000' }).replace('ret=0', 'ret=ok'), /ret=ok is not an integer/],
    ['a stray token', `${line(1, { gpa: '0x0', size: '0x1000' })} garbage`, /unexpected 'garbage'/],
    ['a repeated field', `${line(1, { gpa: '0x0', size: '0x1000' })} gpa=0x1000`, /gpa= given twice/],
    ['both fd spellings', `${line(1, { gpa: '0x0', size: '0x1000' })} guest_memfd=3`, /both restricted_fd and guest_memfd/],
    ['an unaligned gpa, ret=0', line(1, { gpa: '0x1800', size: '0x1000' }), /gpa=0x1800 is not 4 KiB-aligned/],
    ['an unaligned offset, ret=0', line(1, { gpa: '0x0', size: '0x1000', off: '0x10' }), /restricted_offset=0x10 is not 4 KiB-aligned/],
    ['a range past 2^64', line(1, { gpa: '0xfffffffffffff000', size: '0x2000' }), /runs past 2\^64/],
    ['the gmem flag without an fd', line(1, { gpa: '0x0', size: '0x1000', fd: -1 }), /KVM_MEM_GUEST_MEMFD.*restricted_fd=-1 is no fd/],
    ['the gmem flag without fd fields', 'kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x0 size=0x1000 ua=0x0 ret=0', /no restricted_fd=\/guest_memfd=/],
  ]
  for (const [what, bad, pattern] of cases) {
    it(`${what}: names the line`, () => expectMalformed([good, 'kvm_vm_ioctl type 0x1, arg 0x2', bad, good], 3, pattern))
  }

  it('a file without kvm_set_user_memory lines (e.g. the mail, quoted)', () => {
    expect(() => parse(`> ${good}`, 'hello')).toThrow(new BadInput("t.log: no kvm_set_user_memory lines (expected QEMU's output with -trace kvm_set_user_memory)"))
  })

  it('an unreadable file', () => {
    expect(() => loadQemuMemslotTrace('/nonexistent/q.log')).toThrow(/^\/nonexistent\/q\.log: cannot read: ENOENT$/)
  })
})
