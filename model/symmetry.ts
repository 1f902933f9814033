/**
 * Thread symmetry of a compiled program, for the engine's symmetry
 * reduction: the renamings of each declared group of interchangeable
 * threads (`Program.symmetric`), as cell permutations. Renaming threads
 * moves each thread's block (pc and locals) to its new index and rewrites
 * every field declared to hold a thread id (`threadId`, `threadRef`).
 *
 * What is checked here: a group's threads run one process and the initial
 * state is fixed by every renaming (so they start alike, up to their ids).
 * What cannot be checked here, that a step never tells its threads apart
 * other than through declared thread-id fields, is what the orbit-size
 * tests check (test/explorer/symmetry.test.ts); invariants are checked on
 * every renaming of each new state by the engine (explorer/symmetry.ts).
 */
import { ModelError } from '../explorer/errors.js'
import type { Cells, PackedSymmetry } from '../explorer/model.js'
import type { Process } from './process.js'

export interface SymmetryInput {
  readonly model: string
  readonly groups: readonly (readonly string[])[]
  readonly threads: readonly { readonly name: string; readonly process: Process<any, any>; readonly base: number; readonly size: number }[]
  readonly cells: readonly { readonly path: string; readonly thread?: number }[]
  readonly init: Cells
}

/** Every permutation of `xs` (Heap's order is not needed: lexicographic by recursion). */
function permutations(xs: readonly number[]): number[][] {
  if (xs.length <= 1) return [xs.slice()]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]))
}

export function threadSymmetry(input: SymmetryInput): PackedSymmetry | undefined {
  const { model, threads, cells } = input
  const groups = input.groups.filter((g) => g.length > 1)
  if (groups.length === 0) return undefined
  const T = threads.length
  const seen = new Set<number>()
  const indexGroups = groups.map((g) =>
    g.map((name) => {
      const t = threads.findIndex((x) => x.name === name)
      if (t < 0) throw new ModelError(`${model}: symmetric threads: there is no thread ${name}`)
      if (seen.has(t)) throw new ModelError(`${model}: symmetric threads: ${name} is in two groups (or twice in one)`)
      seen.add(t)
      if (threads[t].process !== threads.find((x) => x.name === g[0])?.process) {
        throw new ModelError(`${model}: symmetric threads: ${name} does not run the same process as ${g[0]}`)
      }
      return t
    }),
  )
  // Every renaming: the product of each group's permutations, as a map thread -> thread.
  let sigmas: number[][] = [Array.from({ length: T }, (_, t) => t)]
  for (const g of indexGroups) {
    const perms = permutations(g)
    sigmas = sigmas.flatMap((s) =>
      perms.map((p) => {
        const next = s.slice()
        g.forEach((t, i) => (next[t] = p[i]))
        return next
      }),
    )
  }
  sigmas = sigmas.filter((s) => s.some((x, t) => x !== t))
  const n = cells.length
  const srcs = sigmas.map((sigma) => {
    const src = Int32Array.from({ length: n }, (_, i) => i)
    threads.forEach((th, t) => {
      const to = threads[sigma[t]]
      for (let j = 0; j < th.size; j++) src[to.base + j] = th.base + j
    })
    return src
  })
  const idCells = Int32Array.from(cells.flatMap((c, i) => (c.thread !== undefined ? [i] : [])))
  const idBias = Int32Array.from(idCells, (i) => cells[i].thread!)
  const maps = sigmas.map((x) => Int32Array.from(x))
  const symmetry: PackedSymmetry = {
    count: sigmas.length,
    sources: (p) => srcs[p],
    threadMap: (p) => maps[p],
    idCells,
    idBias,
    permute(p, from, to) {
      const src = srcs[p]
      const sigma = sigmas[p]
      for (let i = 0; i < n; i++) to[i] = from[src[i]]
      for (let k = 0; k < idCells.length; k++) {
        const c = idCells[k]
        const t = to[c] - idBias[k]
        if (t >= 0 && t < T) to[c] = sigma[t] + idBias[k]
      }
    },
    describe(p) {
      const moved = sigmas[p].flatMap((x, t) => (x !== t ? [`${threads[t].name} -> ${threads[x].name}`] : []))
      return moved.join(', ')
    },
  }
  const image = new Int16Array(n)
  for (let p = 0; p < symmetry.count; p++) {
    symmetry.permute(p, input.init, image)
    const i = image.findIndex((v, k) => v !== input.init[k])
    if (i >= 0) {
      throw new ModelError(
        `${model}: symmetric threads do not start alike: renaming ${symmetry.describe(p)} changes ${cells[i].path} (${input.init[i]} -> ${image[i]}); a thread id in a field not declared threadId/threadRef?`,
      )
    }
  }
  return symmetry
}
