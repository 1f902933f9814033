import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadTrace } from '../../traces/file.js'
import { ACTION_TAKEN, fromItf, toItf } from '../../traces/itf.js'
import { mailText } from '../../traces/mail.js'
import { replayTrace } from '../../traces/replay.js'
import { mapcheck, tempDir } from '../support/cli.js'

const dir = join(import.meta.dirname, '../../traces/corpus')
const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
const reference = join(dir, 'fault-invalidate-no-retry-no-stale-mapping.json')

/**
 * The rules of the Informal Trace Format (Apalache ADR-015) that a consumer
 * relies on; returns what breaks them. Values: booleans, strings, lists,
 * records, and the special forms #bigint (a decimal string), #tup, #set,
 * #map, #unserializable; a bare JSON number only as a safe integer.
 */
function itfErrors(itf: unknown): string[] {
  const errors: string[] = []
  const value = (v: unknown, where: string): void => {
    if (typeof v === 'boolean' || typeof v === 'string') return
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) errors.push(`${where}: number ${v} is not a safe integer`)
      return
    }
    if (Array.isArray(v)) return v.forEach((x, i) => value(x, `${where}[${i}]`))
    if (typeof v !== 'object' || v === null) return void errors.push(`${where}: ${String(v)} is not an ITF value`)
    const o = v as Record<string, unknown>
    if ('#bigint' in o) {
      if (Object.keys(o).length !== 1 || typeof o['#bigint'] !== 'string' || !/^-?[0-9]+$/.test(o['#bigint'])) errors.push(`${where}: malformed #bigint`)
      return
    }
    if ('#tup' in o || '#set' in o) return value(o['#tup'] ?? o['#set'], where)
    if ('#map' in o) return (o['#map'] as unknown[][]).forEach(([k, x], i) => (value(k, `${where}#map[${i}]`), value(x, `${where}#map[${i}]`)))
    if ('#unserializable' in o) return
    for (const [k, x] of Object.entries(o)) {
      if (k.startsWith('#')) errors.push(`${where}: unknown special form ${k}`)
      else value(x, `${where}.${k}`)
    }
  }
  const t = itf as { '#meta'?: Record<string, unknown>; vars?: unknown; states?: unknown; params?: unknown; loop?: unknown }
  if (typeof t !== 'object' || t === null) return ['not an object']
  if (t['#meta'] !== undefined && (typeof t['#meta'] !== 'object' || t['#meta'] === null)) errors.push('#meta is not an object')
  if (!Array.isArray(t.vars) || t.vars.some((x) => typeof x !== 'string')) errors.push('vars is not a list of strings')
  if (!Array.isArray(t.states)) return [...errors, 'states is not a list']
  if (t.loop !== undefined && !Number.isInteger(t.loop)) errors.push('loop is not an integer')
  t.states.forEach((s: Record<string, unknown>, i: number) => {
    const meta = s['#meta'] as { index?: unknown } | undefined
    if (meta !== undefined && meta.index !== undefined && meta.index !== i) errors.push(`state ${i}: #meta.index is ${String(meta.index)}`)
    const keys = Object.keys(s).filter((k) => k !== '#meta')
    // Every state holds every variable, and nothing else.
    for (const v of t.vars as string[]) if (!keys.includes(v)) errors.push(`state ${i}: variable ${v} missing`)
    for (const k of keys) if (!(t.vars as string[]).includes(k)) errors.push(`state ${i}: ${k} is not in vars`)
    for (const k of keys) value(s[k], `state ${i}.${k}`)
  })
  return errors
}

describe('ITF export', () => {
  it('the checker of the rules catches what breaks them', () => {
    expect(itfErrors({ vars: ['x'], states: [{ x: 1.5 }] })).toEqual(['state 0.x: number 1.5 is not a safe integer'])
    expect(itfErrors({ vars: ['x', 'y'], states: [{ '#meta': { index: 3 }, x: { '#bigint': '1x' } }] })).toEqual([
      'state 0: #meta.index is 3',
      'state 0: variable y missing',
      'state 0.x: malformed #bigint',
    ])
  })

  for (const file of files) {
    it(`${file}: follows the format, every state in full, and reads back as the same trace`, () => {
      const trace = loadTrace(join(dir, file))
      const r = replayTrace(trace)
      const itf = JSON.parse(JSON.stringify(toItf(trace, r)))
      expect(itfErrors(itf)).toEqual([])
      expect(itf['#meta'].format).toBe('ITF')
      expect(itf.states).toHaveLength(trace.steps.length + 1)
      // Integers as #bigint: no bare number in any state's variables (#meta is free-form).
      const vars = itf.states.map(({ '#meta': _m, ...v }: Record<string, unknown>) => v)
      expect(JSON.stringify(vars)).not.toMatch(/:\s*-?\d/)
      expect(JSON.stringify(vars)).toMatch(/"#bigint":"\d+"/)
      expect(itf.states.slice(1).map((s: Record<string, string>) => s[ACTION_TAKEN])).toEqual(trace.steps.map((s) => `${s.thread}: ${s.label}`))
      const back = fromItf(itf, file)
      expect(back.trace).toEqual(trace)
      // Every state in full: each one is the replayed world, field for field.
      expect(back.states).toEqual([r.initial, ...r.steps.map((s) => s.after)])
    })
  }

  it('show --format itf writes a file that replay and show take back, with the same verdict and diagram', () => {
    const cwd = tempDir()
    const out = mapcheck(['show', reference, '--format', 'itf'], cwd)
    expect(out.status, out.stderr).toBe(0)
    const itfFile = join(cwd, 'trace.itf.json')
    writeFileSync(itfFile, out.stdout)
    const replayed = mapcheck(['replay', itfFile], cwd)
    expect(replayed.status).toBe(1)
    expect(replayed.stdout).toMatch(/^reproduced: no-stale-mapping after step 12 of 12/)
    expect(mapcheck(['show', itfFile], cwd).stdout).toBe(mapcheck(['show', reference], cwd).stdout)
  })

  it("an ITF file that is not one of ours is bad input, one line", () => {
    const cwd = tempDir()
    const foreign = join(cwd, 'quint.itf.json')
    writeFileSync(foreign, JSON.stringify({ '#meta': { format: 'ITF' }, vars: ['x'], states: [{ x: { '#bigint': '1' } }] }))
    const r = mapcheck(['replay', foreign], cwd)
    expect(r.status).toBe(2)
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/not one of mapcheck's \(no #meta.mapcheck/)
  })
})

describe('mail format', () => {
  for (const file of files) {
    it(`${file}: within 72 columns, CPU columns, one sentence with the invariant and the final state, the reproduce commands`, () => {
      const trace = loadTrace(join(dir, file))
      const path = join('traces/corpus', file)
      const text = mailText(trace, path)
      for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(72)
      expect(text).toMatch(trace.steps.length > 0 ? /^CPU0 \(/m : /^\(no step: the initial state is the counterexample\)$/m)
      const paragraphs = text.split('\n\n').map((p) => p.replace(/\s*\n\s*/g, ' '))
      const sentence = paragraphs.find((p) => p.includes('the final state has'))!
      expect(sentence).toContain(trace.violation.invariant)
      expect(sentence.match(/\.$/g)).toHaveLength(1)
      // As the shell reads them: a backslash-newline is removed, then words split on blanks.
      const commands = text.slice(text.indexOf('Reproduce:')).replace(/\\\n/g, '').replace(/[ \t]+/g, ' ')
      expect(commands).toContain(`mapcheck check ${trace.scenario} --variant ${trace.variant}`)
      expect(commands).toContain(`mapcheck replay ${path}`)
    })
  }

  it('the check command it gives finds the same violation again; show --format mail prints it', () => {
    const cwd = tempDir()
    const text = mapcheck(['show', reference, '--format', 'mail'], cwd).stdout
    expect(text).toContain('CPU1 (inval0)')
    const command = /^\s+mapcheck (check .*)$/m.exec(text.replace(/\\\n/g, '').replace(/[ \t]+/g, ' '))![1].split(' ')
    const r = mapcheck(command, cwd)
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/VIOLATED no-stale-mapping: page 0: SLAT maps pfn 1 but the host maps nothing/)
    expect(readFileSync(reference, 'utf8')).toContain('"no-stale-mapping"')
  })
})
