/**
 * Regenerates docs/report-screenshot.png, the README's picture of the
 * report: the page of a corpus trace of seed 001 (mshv-movable, upstream:
 * a partial THP zap leaves a huge SLAT leaf over a freed page) at its
 * violating step, in Debian's Chromium through playwright-core.
 *
 *   npm run screenshot
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import { findScenario } from '../invariants/scenarios.js'
import { loadTrace } from '../traces/file.js'
import { htmlReport } from '../traces/html-report.js'

const root = join(import.meta.dirname, '..')
const traceFile = 'traces/corpus/mshv-movable-upstream-partial-thp-no-stale-mapping.json'
const out = join(root, 'docs/report-screenshot.png')

const trace = loadTrace(join(root, traceFile))
const page = join(tmpdir(), `mapcheck-report-${process.pid}.html`)
writeFileSync(page, htmlReport({ title: `mapcheck show ${traceFile} --format html`, traces: [trace], scenario: findScenario(trace.scenario) }))
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
try {
  const tab = await browser.newPage({ viewport: { width: 1400, height: 860 } })
  await tab.goto(`${pathToFileURL(page).href}#step-${trace.steps.length}`)
  const tmp = `${out}.${process.pid}.tmp.png`
  await tab.screenshot({ path: tmp })
  renameSync(tmp, out)
  process.stdout.write(`${out}\n`)
} finally {
  await browser.close()
  rmSync(page, { force: true })
}
