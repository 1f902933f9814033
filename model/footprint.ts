/**
 * Footprints for partial-order reduction, recorded rather than declared: a
 * step sees the world's globals through a view that notes any access, and
 * the threads only through its own `me`, so a step that never touches the
 * view is local to its thread, measured on the very state it runs in. No
 * step can reach another thread's locals or pc (the step's view has no
 * `threads`), which is what makes such a step independent of every other
 * thread's steps; properties see `threads`, and reading it is noted too.
 */
import type { Cells } from '../explorer/model.js'
import { type Fields, sizeOf, type StructField, view } from './schema.js'

/** A flag set by any access through a recording view: `touched[0] = 1`. */
export type Touched = Uint8Array

/**
 * The globals of `buf` as step code sees them: the same fields as
 * `view(globals, buf, 0)`, each access (read or write, of a field or of
 * anything reached through it) noted in `touched`.
 */
export function recordingWorld(globals: StructField, buf: Cells, touched: Touched): object {
  const plain = view(globals, buf, 0) as Record<string, unknown>
  const w = {}
  let at = 0
  for (const [k, g] of Object.entries(globals.fields as Fields)) {
    if (g.kind === 'int') {
      const off = at
      Object.defineProperty(w, k, {
        get() {
          touched[0] = 1
          return buf[off]
        },
        set(v: number) {
          touched[0] = 1
          buf[off] = v
        },
        enumerable: true,
      })
    } else {
      const sub = plain[k]
      Object.defineProperty(w, k, {
        get() {
          touched[0] = 1
          return sub
        },
        enumerable: true,
      })
    }
    at += sizeOf(g)
  }
  return Object.freeze(w)
}

/** Gives `w` (a property's view of the world) a `threads` that notes each read in `touched`. */
export function recordThreads(w: object, threads: readonly unknown[], touched: Touched): void {
  Object.defineProperty(w, 'threads', {
    get() {
      touched[0] = 1
      return threads
    },
  })
}
