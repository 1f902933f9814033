/**
 * The build's label check. A step's `run` returns the label to go to; tsc
 * checks those returns in a process written with `process<W, L>()({...})`,
 * and this check covers every process, typed or not (a review file in
 * plain JavaScript included): it reads the string literals of each step's
 * `run` (and of the functions a helper-made step names in `targets`), so a
 * goto to a label the process does not declare, or a step no goto names,
 * is an error when the model is built, never a thread that silently ends.
 * Gotos computed from a variable are invisible to it: a process lists the
 * labels it reaches that way in `gotos`.
 */

/** The string literals of a function's source: all of them, and those in its `return` expressions. */
export function literalsOf(fn: (...args: any[]) => unknown): { returned: string[]; all: string[] } {
  const src = fn.toString()
  const all: string[] = []
  const returned: string[] = []
  // An expression-bodied arrow function returns its whole body.
  const arrow = /^\s*(?:async\s*)?(?:\([^)]*\)|[\w$]+)\s*=>\s*(?!\{)/.exec(src)
  let inReturn = arrow ? 0 : -1 // paren depth at which the current return expression started, -1 when none
  let depth = 0
  for (let i = arrow ? arrow[0].length : 0; i < src.length; i++) {
    const c = src[i]
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++
      continue
    }
    if (c === '/' && src[i + 1] === '*') {
      i = src.indexOf('*/', i + 2)
      if (i < 0) break
      i++
      continue
    }
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1
      let text = ''
      let plain = true
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\') {
          text += src[j + 1]
          j += 2
          continue
        }
        if (c === '`' && src[j] === '$' && src[j + 1] === '{') plain = false
        text += src[j++]
      }
      // A literal compared with `===` (a policy test, `variant === 'v0'`) is not a goto.
      const compared = /[=!]=\s*$/.test(src.slice(Math.max(0, i - 4), i)) || /^\s*[=!]==?/.test(src.slice(j + 1, j + 5))
      if (plain) {
        all.push(text)
        if (inReturn >= 0 && !compared) returned.push(text)
      }
      i = j
      continue
    }
    if (c === '(' || c === '[' || c === '{') depth++
    else if (c === ')' || c === ']' || c === '}') {
      depth--
      if (inReturn >= 0 && depth < inReturn) inReturn = -1
    } else if (c === ';' && inReturn >= 0 && depth === inReturn) inReturn = -1
    else if (c === 'r' && /^return\b/.test(src.slice(i, i + 7)) && !/[\w$.]/.test(src[i - 1] ?? '')) {
      inReturn = depth
      i += 5
    }
  }
  return { returned, all }
}
