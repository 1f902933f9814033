/**
 * --shard k/n: k given, counted from --shard-base, or read from the
 * variable each launcher sets (Kubernetes, Slurm with its offset and step,
 * GNU parallel's job number); everything else is one line of bad input.
 */
import { describe, expect, it } from 'vitest'
import { isBadInput } from '../../explorer/errors.js'
import { parseShard } from '../../cli/shard-spec.js'

const bad = (spec: string, env: Record<string, string> = {}, base?: string): string => {
  try {
    parseShard(spec, env, base)
  } catch (e) {
    expect(isBadInput(e)).toBe(true)
    const message = (e as Error).message
    expect(message.split('\n')).toHaveLength(1)
    return message
  }
  throw new Error(`--shard ${spec} was accepted`)
}

describe('parseShard', () => {
  it('k/n, counted from 0 or from --shard-base', () => {
    expect(parseShard('3/8', {})).toEqual({ k: 3, n: 8, from: '3/8' })
    expect(parseShard('0/1', {})).toMatchObject({ k: 0, n: 1 })
    // GNU parallel's {#} substituted: 1..8.
    expect(parseShard('8/8', {}, '1')).toMatchObject({ k: 7, n: 8, from: '8/8 counted from 1' })
    expect(parseShard('1/8', {}, '1')).toMatchObject({ k: 0 })
  })

  it('env/n: JOB_COMPLETION_INDEX as is, PARALLEL_SEQ from 1', () => {
    expect(parseShard('env/8', { JOB_COMPLETION_INDEX: '5' })).toEqual({ k: 5, n: 8, from: 'JOB_COMPLETION_INDEX=5' })
    expect(parseShard('env/8', { PARALLEL_SEQ: '1' })).toMatchObject({ k: 0, from: 'PARALLEL_SEQ=1 counted from 1' })
    expect(parseShard('env/8', { PARALLEL_SEQ: '8' })).toMatchObject({ k: 7 })
  })

  it('env/n: SLURM_ARRAY_TASK_ID less the array minimum, divided by its step', () => {
    expect(parseShard('env/8', { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '8' })).toMatchObject({ k: 3 })
    expect(parseShard('env/8', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '8' })).toMatchObject({ k: 0 })
    expect(parseShard('env/8', { SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '8' })).toMatchObject({ k: 7, from: 'SLURM_ARRAY_TASK_ID=8 - SLURM_ARRAY_TASK_MIN=1' })
    expect(parseShard('env/8', { SLURM_ARRAY_TASK_ID: '107', SLURM_ARRAY_TASK_MIN: '100' })).toMatchObject({ k: 7 })
    expect(parseShard('env/8', { SLURM_ARRAY_TASK_ID: '106', SLURM_ARRAY_TASK_MIN: '100', SLURM_ARRAY_TASK_STEP: '2', SLURM_ARRAY_TASK_COUNT: '8' })).toMatchObject({ k: 3 })
  })

  it('env:NAME/n reads any variable; it settles two launchers at once', () => {
    expect(parseShard('env:MY_INDEX/4', { MY_INDEX: '2' })).toMatchObject({ k: 2, from: 'MY_INDEX=2' })
    expect(parseShard('env:MY_INDEX/4', { MY_INDEX: '4' }, '1')).toMatchObject({ k: 3 })
    const both = { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '1', PARALLEL_SEQ: '4' }
    expect(bad('env/8', both)).toMatch(/SLURM_ARRAY_TASK_ID and PARALLEL_SEQ are both set: say which with env:NAME\/8/)
    expect(parseShard('env:PARALLEL_SEQ/8', both)).toMatchObject({ k: 3 })
    expect(parseShard('env:SLURM_ARRAY_TASK_ID/8', both)).toMatchObject({ k: 1 })
  })

  it('bad specs: one line naming what is wrong', () => {
    expect(bad('8/8')).toMatch(/^--shard 8\/8: k = 8 gives shard 8, but there are 8 shards \(0\.\.7\)$/)
    expect(bad('3/0')).toMatch(/n must be at least 1/)
    expect(bad('0/0')).toMatch(/n must be at least 1/)
    for (const s of ['a/8', '3', '3/', '/8', '-1/8', '1.5/8', '3/8/2', '3/x', 'env', 'env/', 'ENV/8', ' 3/8']) expect(bad(s)).toMatch(/expected k\/n/)
    expect(bad('{#}/8')).toMatch(/unsubstituted GNU parallel placeholder/)
    expect(bad('0/8', {}, '1')).toMatch(/below the first shard's number 1/)
    expect(bad('3/8', {}, 'x')).toMatch(/^--shard-base x: expected a non-negative integer$/)
    expect(bad('env/8')).toMatch(/none of JOB_COMPLETION_INDEX \(Kubernetes Indexed Job\), SLURM_ARRAY_TASK_ID \(Slurm job array\), PARALLEL_SEQ \(GNU parallel\) is set/)
    expect(bad('env/8', { JOB_COMPLETION_INDEX: '' })).toMatch(/none of/)
    expect(bad('env:MY_INDEX/8')).toMatch(/MY_INDEX is not set/)
    expect(bad('env/8', { JOB_COMPLETION_INDEX: 'three' })).toMatch(/JOB_COMPLETION_INDEX="three" is not a non-negative integer/)
    expect(bad('env/8', { JOB_COMPLETION_INDEX: '8' })).toMatch(/gives shard 8, but there are 8 shards/)
    expect(bad('env/8', { PARALLEL_SEQ: '0' })).toMatch(/below the first shard's number 1/)
    expect(bad('env/8', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '9' })).toMatch(/the Slurm array has 9 tasks \(SLURM_ARRAY_TASK_COUNT=9\), not 8/)
    expect(bad('env/8', { SLURM_ARRAY_TASK_ID: '105', SLURM_ARRAY_TASK_MIN: '100', SLURM_ARRAY_TASK_STEP: '2' })).toMatch(/not SLURM_ARRAY_TASK_MIN=100 plus a multiple of SLURM_ARRAY_TASK_STEP=2/)
    expect(bad('env/8', { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '1' })).toMatch(/below the first shard's number 1/)
  })
})
