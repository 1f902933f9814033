import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { mapcheck, tempDir } from '../support/cli.js'

const fixture = join(import.meta.dirname, '../fixtures/seed-003-qemu.log')

// Slot 5 of the seed: gpa=0x100000 size=0x7ff00000 ua=0x7f24afd00000 restricted_offset=0x100000.
const gpa = 0x100000
const size = 0x7ff00000
const ua = 0x7f24afd00000
const MiB2 = 0x200000
const GiB = 0x40000000
const alignedShare = (huge: number): number => (Math.floor((gpa + size) / huge) * huge - Math.ceil(gpa / huge) * huge) / size
/** KVM's ua rule, under every policy: gpa and ua congruent modulo the huge size, else none of that size in the slot. */
const uaOk = (huge: number): boolean => (ua - gpa) % huge === 0
/** What interior-hugepages maps of slot 5 (gpa and offset congruent): the aligned ranges KVM's own limits leave. */
const ihShare = (huge: number): number => (uaOk(huge) ? alignedShare(huge) : 0)
const pct = (share: number): string => `${(share * 100).toFixed(2)}%`

describe('mapcheck layout', () => {
  it('prints one row per final slot: slot 5 at 0% under whole-binding, 99.95% (2M) and 0% (1G, ua) under interior-hugepages', () => {
    const r = mapcheck(['layout', fixture], tempDir())
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(pct(ihShare(MiB2))).toBe('99.95%')
    const row = r.stdout.split('\n').find((l) => l.startsWith('5 '))!
    expect(row.trim().split(/\s{2,}/)).toEqual([
      '5',
      '0x100000-0x7fffffff',
      'gmem 19+0x100000',
      '2047 MiB',
      '0.00%',
      '0.00%',
      pct(ihShare(MiB2)),
      pct(ihShare(GiB)),
      'safe',
    ])
    expect(r.stdout.split('\n').filter((l) => /^\d+ /.test(l)).map((l) => l.split(' ')[0])).toEqual(['0', '3', '4', '5'])
    expect(r.stdout).toMatch(/^total\s+4 slots\s+2 GiB\s/m)
    expect(r.stdout).toMatch(/best case: every\s+guest_memfd folio/)
    for (const l of r.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(100)
    // KVM's ua rule is applied, and named where it zeroes a level: slot 5 at 1G, nowhere else.
    expect(r.stdout).toMatch(/^every policy: KVM's own limits first \(aligned range inside the slot, gfn and ua congruent\)$/m)
    const notes = r.stdout.slice(r.stdout.indexOf('\nnote: ')).replace(/\n {2}/g, ' ').trim().split('\n')
    expect(notes).toEqual([
      'note: slot 5: gpa 0x100000 and ua 0x7f24afd00000 are not congruent modulo 1G; x86 KVM (kvm_alloc_memslot_metadata) ' +
        'then disallows 1G leaves in the whole slot, private faults included. Applied above: its 1G shares are 0% under every policy.',
    ])
    expect(r.stdout).not.toMatch(/do not apply/)
    expect(r.stdout).not.toMatch(/^! =/m)
  })

  it('--json prints every number, with the assumption', () => {
    const r = mapcheck(['layout', fixture, '--json'], tempDir())
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.assumption).toMatch(/^best case/)
    expect(out.slots.map((s: { slot: number }) => s.slot)).toEqual([0, 3, 4, 5])
    const s5 = out.slots[3]
    expect(s5).toMatchObject({
      addrSpace: 0,
      gpa: { start: '0x100000', end: '0x80000000' },
      npages: size / 4096,
      backing: { kind: 'gmem', fd: 19, offset: '0x100000', pgoff: 0x100, ua: '0x7f24afd00000' },
    })
    expect(s5.levels.map((l: { level: string }) => l.level)).toEqual(['2M', '1G'])
    expect(s5.levels[0].policies['interior-hugepages'].share).toBe(ihShare(MiB2))
    expect(s5.levels[1].policies['interior-hugepages'].share).toBe(ihShare(GiB))
    expect(s5.levels[0].policies['whole-binding']).toEqual({ allowedPages: 0, share: 0, unsafePages: 0 })
    expect(out.totals.npages).toBe((0xc0000 + 0x20000 + 0x20000 + size) / 4096)
    expect(out.events.map((e: { op: string }) => e.op)).toEqual(['create', 'delete', 'create', 'create', 'create', 'create'])
    expect(out.notes).toHaveLength(1)
  })

  it("slot 5 at 1G: 0% under every policy because of KVM's ua rule (uaCongruent: false), though a 1G range fits and gpa and offset agree", () => {
    const line = readFileSync(fixture, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('kvm_set_user_memory AddrSpace#0 Slot#5 '))!
    expect(line).toContain(`ua=0x${ua.toString(16)} `)
    const g1 = (r: { stdout: string }) => JSON.parse(r.stdout).slots.find((s: { slot: number }) => s.slot === 5).levels[1]
    const seed = g1(mapcheck(['layout', fixture, '--json'], tempDir()))
    expect(seed).toMatchObject({ level: '1G', levelPages: GiB / 4096, alignedBlocks: 1, alignedPages: GiB / 4096, gmemCongruent: true })
    expect(seed.uaCongruent).toBe(uaOk(GiB))
    expect(seed.uaCongruent).toBe(false)
    for (const p of ['whole-binding', 'interior-hugepages', 'no-clamp']) expect(seed.policies[p]).toEqual({ allowedPages: 0, share: 0, unsafePages: 0 })

    // The same line with ua moved down to the nearest address congruent with gpa modulo 1G: the 1G range comes back.
    const dir = tempDir()
    const movedUa = ua - ((ua - gpa) % GiB)
    writeFileSync(join(dir, 'moved.log'), `${line.replace(`ua=0x${ua.toString(16)} `, `ua=0x${movedUa.toString(16)} `)}\n`)
    const moved = g1(mapcheck(['layout', 'moved.log', '--json'], dir))
    expect(moved.uaCongruent).toBe(true)
    expect(moved.policies['interior-hugepages']).toEqual({ allowedPages: GiB / 4096, share: alignedShare(GiB), unsafePages: 0 })
    expect(moved.policies['no-clamp']).toEqual(moved.policies['interior-hugepages'])
    expect(moved.policies['whole-binding'].allowedPages).toBe(0)
    expect(JSON.parse(mapcheck(['layout', 'moved.log', '--json'], dir).stdout).notes).toEqual([])
  })

  // Slot 5 as if QEMU had bound it at offset 0, 2 GiB long: pgoff and npages aligned, base_gfn 0x100 not. With the seed's
  // ua (congruent with gpa modulo 2M only) and with one moved down to be congruent modulo 1G too.
  for (const [what, slotUa] of [
    ["the seed's ua", ua],
    ['a ua congruent modulo 1G', ua - ((ua - gpa) % GiB)],
  ] as const) {
    it(`marks the leaves that map wrong pages: whole-binding (!) and no-clamp (UNSAFE), at the levels KVM's ua rule lets through (${what})`, () => {
      const dir = tempDir()
      writeFileSync(
        join(dir, 'unsafe.log'),
        `kvm_set_user_memory AddrSpace#0 Slot#5 flags=0x4 gpa=0x100000 size=0x80000000 ua=0x${slotUa.toString(16)} ret=0 restricted_fd=19 restricted_offset=0x0\n`,
      )
      const r = mapcheck(['layout', 'unsafe.log'], dir)
      expect(r.status).toBe(0)
      const row = r.stdout.split('\n').find((l) => l.startsWith('5 '))!
      // Aligned ranges inside [0x100000, 0x80100000): 2M ones from 0x200000, one 1G range at 0x40000000; each level only
      // if gpa and ua are congruent modulo it.
      const passes = (huge: number): boolean => (slotUa - gpa) % huge === 0
      const m2 = passes(MiB2) ? (0x80000000 - 0x200000) / 0x80000000 : 0
      const g1 = passes(GiB) ? 0x40000000 / 0x80000000 : 0
      const mark = (share: number): string => `${pct(share)}${share > 0 ? '!' : ''}`
      const unsafe = [m2 > 0 && '2M', g1 > 0 && '1G'].filter((l) => l !== false)
      expect(row.trim().split(/\s{2,}/).slice(4)).toEqual([mark(m2), mark(g1), '0.00%', '0.00%', unsafe.length > 0 ? `UNSAFE ${unsafe.join(',')}` : 'safe'])
      expect([passes(MiB2), passes(GiB)]).toEqual([true, slotUa !== ua])
    })
  }
})

describe('mapcheck layout: bad input is one line, exit 2, nothing on stdout', () => {
  const dir = tempDir()
  writeFileSync(
    join(dir, 'bad.log'),
    [
      'kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 size=0xc0000 ua=0x7f24afc00000 ret=0 restricted_fd=19 restricted_offset=0x0',
      'kvm_set_user_memory AddrSpace#0 Slot#5 flags=0x4 gpa=0x100000 size=0x7ff00000 ret=0 restricted_fd=19 restricted_offset=0x100000',
    ].join('\n'),
  )
  writeFileSync(join(dir, 'mail.txt'), readFileSync(fixture, 'utf8').replace(/^/gm, '> '))

  const cases: [string, string[], RegExp][] = [
    ['a missing file', ['layout', 'missing.log'], /^mapcheck: missing\.log: cannot read: ENOENT$/],
    ['a malformed line', ['layout', 'bad.log'], /^mapcheck: bad\.log:2: malformed kvm_set_user_memory line: missing ua=$/],
    ['a file with no trace line', ['layout', 'mail.txt', '--json'], /^mapcheck: mail\.txt: no kvm_set_user_memory lines/],
    ['no file', ['layout'], /missing required argument 'file'/],
  ]
  for (const [what, args, pattern] of cases) {
    it(what, () => {
      const before = readdirSync(dir)
      const r = mapcheck(args, dir)
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.stderr.trimEnd()).toMatch(pattern)
      expect(r.stdout).toBe('')
      expect(readdirSync(dir)).toEqual(before)
    })
  }
})
