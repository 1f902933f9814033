/**
 * Review files: a user's own .ts/.mts/.js/.mjs module, anywhere on disk and
 * usually without a node_modules of its own, that imports mapcheck's public
 * API (`import { ... } from 'mapcheck'`). They are loaded at run time:
 *
 * - TypeScript through tsx's global ESM hooks, registered once, and only when
 *   the running code cannot load TypeScript already (this module's own URL
 *   ends in `.ts` when it runs from source under tsx or under vitest);
 * - the bare specifier `mapcheck` through a resolve hook of our own, to the
 *   running mapcheck's public API module: dist/index.js next to the bundled
 *   CLI, or index.ts from source. A review file thus shares every module
 *   instance with the CLI (its `BadInput` is the CLI's `BadInput`). Under
 *   vitest, whose module runner does not go through Node's hooks, the same
 *   is done by an alias in vitest.config.ts.
 *
 * Loading the same path again after its content changed loads the new
 * content: the module URL carries the content's hash.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { register as registerHooks } from 'node:module'
import { dirname, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { stripVTControlCharacters } from 'node:util'
import { BadInput } from '../explorer/errors.js'

/** A loaded review file. */
export interface ReviewFile {
  /** The path as given (relative to the working directory, or absolute). */
  file: string
  absolute: string
  /** sha256 of the file's content, hex. */
  sha256: string
  /** The module's namespace object. */
  module: Record<string, unknown>
}

/** Running from source (under tsx or vitest) rather than from the bundle in dist/. */
const fromSource = import.meta.url.endsWith('.ts')
/** Where `mapcheck` resolves for a review file: this very mapcheck's public API. */
const apiUrl = new URL(fromSource ? '../index.ts' : './index.js', import.meta.url).href
const packageJsonUrl = new URL('../package.json', import.meta.url).href

/**
 * Node module hooks, run on the hooks thread, first in the chain (registered
 * after tsx's):
 * - `mapcheck` resolves to the running mapcheck's public API;
 * - a review file (the URL carrying `?sha=`) and the files it imports by path
 *   are ES modules whatever the nearest package.json says: a review file in
 *   /tmp or $HOME has no package.json with "type": "module", and as CommonJS
 *   its `import ... from 'mapcheck'` would become a require() that no ESM hook
 *   sees (nor does tsx's ESM-only register() compile CommonJS TypeScript);
 * - their JavaScript is loaded by Node itself, not through tsx's transform,
 *   whose lexer reports any syntax error as "Parse error" at line 1.
 */
const HOOKS = `
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
let api, pkg
const scope = new Set()
const own = (url) => url.startsWith('file:') && !url.includes('/node_modules/') && /\\.(ts|mts|js|mjs|tsx|jsx)$/.test(new URL(url).pathname)
export function initialize(data) { api = data.api; pkg = data.pkg }
export async function resolve(specifier, context, nextResolve) {
  // Through the rest of the chain, for the format of index.ts that tsx gives.
  if (specifier === 'mapcheck') return nextResolve(api, context)
  if (specifier === 'mapcheck/package.json') return nextResolve(pkg, context)
  if (specifier.startsWith('mapcheck/')) {
    throw new Error("'" + specifier + "' is not exported by mapcheck (import from 'mapcheck')")
  }
  const resolved = await nextResolve(specifier, context)
  const review = /[?&]sha=[0-9a-f]{64}$/.test(resolved.url) || (context.parentURL !== undefined && scope.has(context.parentURL))
  if (!review || !own(resolved.url)) return resolved
  scope.add(resolved.url)
  return { ...resolved, format: 'module' }
}
export async function load(url, context, nextLoad) {
  if (scope.has(url) && /\\.m?js$/.test(new URL(url).pathname)) {
    return { format: 'module', source: await readFile(fileURLToPath(url)), shortCircuit: true }
  }
  return nextLoad(url, context)
}
`

let hooks: Promise<void> | undefined

function registerLoaders(): Promise<void> {
  hooks ??= (async () => {
    if (!fromSource) {
      // The global register, not tsImport's namespace: a namespace would load
      // the review file's imports as module instances of their own.
      const { register } = await import('tsx/esm/api')
      register()
    }
    // Registered last, so it runs first: it sees `mapcheck` and what tsx resolves.
    registerHooks(`data:text/javascript,${encodeURIComponent(HOOKS)}`, { data: { api: apiUrl, pkg: packageJsonUrl } })
  })()
  return hooks
}

function readReviewFile(path: string, absolute: string): Buffer {
  try {
    return readFileSync(absolute)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const cause = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : firstLine(String((e as Error).message ?? e))
    throw new BadInput(`${path}: cannot load: ${cause}`)
  }
}

const sha256 = (content: Buffer): string => createHash('sha256').update(content).digest('hex')

/** sha256 of the review file's content, hex; BadInput if it cannot be read. */
export function reviewFileHash(path: string): string {
  return sha256(readReviewFile(path, resolve(path)))
}

/** Whether a command-line argument names a review file rather than, say, a scenario. */
export function looksLikeReviewFile(arg: string): boolean {
  return /\.(ts|mts|js|mjs)$/.test(arg) || arg.includes('/') || arg.includes(sep) || arg.startsWith('.')
}

/**
 * Imports a review file. A missing file, a syntax error or an exception
 * thrown while the module evaluates is a BadInput of one line naming the
 * file and the cause: `review.ts: cannot load: SyntaxError: ... (line 3)`.
 */
export async function loadReviewFile(path: string): Promise<ReviewFile> {
  const absolute = resolve(path)
  const hash = sha256(readReviewFile(path, absolute))
  await registerLoaders()
  let module: Record<string, unknown>
  try {
    module = (await import(`${pathToFileURL(absolute).href}?sha=${hash}`)) as Record<string, unknown>
  } catch (e) {
    throw new BadInput(`${path}: cannot load: ${javaScriptSyntaxError(absolute) ?? describe(e, absolute)}`)
  }
  return { file: path, absolute, sha256: hash, module }
}

/** The first line of a message; the first two if the first introduces the next ("Transform failed with 1 error:"). */
function firstLine(s: string): string {
  const lines = stripVTControlCharacters(s)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
  return lines[0]?.endsWith(':') && lines[1] !== undefined ? `${lines[0]} ${lines[1]}` : (lines[0] ?? '')
}

/** ` (line n)`, or ` (other.ts line n)` for a file the review file imports. */
const at = (absolute: string, file: string, line: string): string =>
  file === absolute ? ` (line ${line})` : ` (${relative(dirname(absolute), file)} line ${line})`

/**
 * `Name: message (line n)`: the first line of the error's message, and the
 * review file's line where it arose when its message or stack tells.
 */
function describe(e: unknown, absolute: string): string {
  if (!(e instanceof Error)) return firstLine(String(e))
  const clean = (s: string): string => stripVTControlCharacters(s.replace(/\?sha=[0-9a-f]{64}/g, ''))
  // esbuild's (tsx's) TypeScript syntax error:
  // "Transform failed with 1 error:\n/abs/review.ts:3:9: ERROR: Expected ..."
  const esbuild = /^(\/.*|[A-Za-z]:\\.*):(\d+):\d+: ERROR: (.*)$/m.exec(clean(e.message))
  if (esbuild) return `SyntaxError: ${esbuild[3]}${at(absolute, esbuild[1], esbuild[2])}`
  const code = (e as NodeJS.ErrnoException).code
  const name = e.name === 'Error' && typeof code === 'string' ? `Error [${code}]` : e.name
  const line = lineIn(clean(`${e.message}\n${e.stack ?? ''}`), absolute)
  return `${name}: ${firstLine(clean(e.message))}${line ? at(absolute, absolute, line) : ''}`
}

/**
 * The line of the first `place:line` in `text` whose place is the file
 * `absolute`: a file URL (stack frames), an absolute path, or a path
 * relative to the working directory (vitest's transform errors).
 */
function lineIn(text: string, absolute: string): string | undefined {
  for (const [, place, line] of text.matchAll(/([^\s()[\]'"`]+?):(\d+)(?=[:\s)\]]|$)/g)) {
    try {
      if ((place.startsWith('file:') ? fileURLToPath(place) : resolve(place)) === absolute) return line
    } catch {
      // not a path
    }
  }
  return undefined
}

/**
 * `SyntaxError: message (line n)` if a JavaScript review file does not parse.
 * Node keeps the position of a module's syntax error out of the error's
 * message and stack (it prints it only for an uncaught error), and vitest's
 * runner reports one with neither name nor position, so after a failed load
 * the file is parsed once more by `node --check`, in a child process.
 */
function javaScriptSyntaxError(absolute: string): string | undefined {
  if (!/\.m?js$/.test(absolute)) return undefined
  const check = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: readFileSync(absolute), encoding: 'utf8' })
  if (check.status === 0) return undefined
  const line = /^\[stdin\]:(\d+)$/m.exec(check.stderr)?.[1]
  const message = /^SyntaxError: .*$/m.exec(check.stderr)?.[0]
  return message && line ? `${message}${at(absolute, absolute, line)}` : undefined
}
