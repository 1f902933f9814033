#!/usr/bin/env node
// Summarises a V8 .cpuprofile: self time per function, mapped back to the
// TypeScript source through dist/*.js.map when there is one.
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --expose-gc dist/bench.js --one 4,2,1,2,2
//   node bench/cpuprofile-top.mjs /tmp/prof/*.cpuprofile [top=25]
import { readFileSync, existsSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { fileURLToPath } from 'node:url'

const [file, topArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: cpuprofile-top.mjs FILE.cpuprofile [top]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const prof = JSON.parse(readFileSync(file, 'utf8'))

const maps = new Map()
function sourceMapFor(url) {
  if (!url.startsWith('file://')) return null
  if (!maps.has(url)) {
    const path = fileURLToPath(url)
    maps.set(url, existsSync(`${path}.map`) ? new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8'))) : null)
  }
  return maps.get(url)
}

const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const self = new Map()
const dt = prof.timeDeltas
let total = 0
for (let i = 0; i < prof.samples.length; i++) {
  const n = byId.get(prof.samples[i])
  const d = dt[i] ?? 0
  total += d
  self.set(n, (self.get(n) ?? 0) + d)
}

// Aggregate by function (name + source position).
const agg = new Map()
for (const [n, t] of self) {
  const cf = n.callFrame
  let where = cf.url ? cf.url.replace(/^.*\//, '') : ''
  const sm = sourceMapFor(cf.url)
  if (sm && cf.lineNumber >= 0) {
    const e = sm.findEntry(cf.lineNumber, cf.columnNumber)
    if (e && e.originalSource) where = `${e.originalSource.replace(/^.*?(\.\.\/)+/, '')}:${e.originalLine + 1}`
  } else if (cf.lineNumber >= 0) where += `:${cf.lineNumber + 1}`
  const k = `${cf.functionName || '(anonymous)'}  ${where}`
  agg.set(k, (agg.get(k) ?? 0) + t)
}
const rows = [...agg].sort((a, b) => b[1] - a[1]).slice(0, top)
console.log(`total ${(total / 1e6).toFixed(2)} s sampled`)
for (const [k, t] of rows) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1e3).toFixed(0).padStart(6)} ms  ${k}`)
