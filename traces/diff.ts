/** A structural difference between two plain states: what one step changed. */
export interface Change {
  /** e.g. `slat[2]`, `threads[0].p` */
  readonly path: readonly (string | number)[]
  readonly from: unknown
  readonly to: unknown
}

export function diff(before: unknown, after: unknown, path: (string | number)[] = [], out: Change[] = []): Change[] {
  if (Object.is(before, after)) return out
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    before.forEach((b, i) => diff(b, after[i], [...path, i], out))
  } else if (isRecord(before) && isRecord(after)) {
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) diff(before[k], after[k], [...path, k], out)
  } else {
    out.push({ path, from: before, to: after })
  }
  return out
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
