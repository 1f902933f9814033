/**
 * The report in a real browser: Debian's Chromium (/usr/bin/chromium, which
 * .ci/run installs) driven by playwright-core, which never downloads a
 * browser of its own. Skipped, saying so, only where that Chromium is absent.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findScenario } from '../../invariants/scenarios.js'
import { loadTrace } from '../../traces/file.js'
import { htmlReport } from '../../traces/html-report.js'
import { tempDir } from '../support/cli.js'

const CHROMIUM = '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) console.warn(`report-browser tests skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)`)

const root = join(import.meta.dirname, '../..')
/** Screenshots for people to look at, beside the test run (not committed). */
const output = join(root, 'test-output')
const corpus = join(root, 'traces/corpus')

/** The report page of a corpus trace, written to a file. */
function reportOf(traceFile: string): { url: string; steps: number; at: number; message: string } {
  const trace = loadTrace(join(corpus, traceFile))
  const file = join(tempDir(), 'report.html')
  writeFileSync(file, htmlReport({ title: `report of ${traceFile}`, traces: [trace], scenario: findScenario(trace.scenario) }))
  return { url: pathToFileURL(file).href, steps: trace.steps.length, at: trace.steps.length, message: trace.violation.message }
}

describe.skipIf(!haveChromium)('the report in Chromium', () => {
  let browser: Browser
  let page: Page
  const requests: string[] = []

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    page.on('request', (r) => requests.push(r.url()))
  })
  afterAll(async () => {
    await browser?.close()
  })

  const current = (p: Page) => p.locator('section.trace').first().getAttribute('data-current')
  const visibleView = (p: Page) => p.locator('section.trace').first().locator('.step-view:not([hidden])')

  it('steps to the violating step with → and shows the highlighted entry, the diagram row and the message; a screenshot is written', async () => {
    const r = reportOf('mshv-movable-upstream-partial-thp-no-stale-mapping.json')
    await page.goto(`${r.url}#step-0`)
    expect(await current(page)).toBe('0')
    await expect.poll(() => visibleView(page).getAttribute('data-step')).toBe('0')
    // The initial state: nothing outlined yet.
    expect(await visibleView(page).locator('.violating').count()).toBe(0)
    for (let n = 0; n < r.at; n++) await page.keyboard.press('ArrowRight')
    expect(await current(page)).toBe(String(r.at))
    // The diagram's current row is the violating step.
    const row = page.locator('.diagram tr.current')
    expect(await row.count()).toBe(1)
    expect(await row.getAttribute('data-step')).toBe(String(r.at))
    expect(await row.getAttribute('class')).toContain('violating-step')
    // The picture outlines gfn 0x3's row, the SLAT leaf over it and the host PTE of pfn 0x4, and says why.
    const view = visibleView(page)
    expect(await view.getAttribute('data-step')).toBe(String(r.at))
    expect(await view.locator('rect.violating-row').getAttribute('data-row')).toBe('1')
    expect(await view.locator('g.cell.violating[data-lane="SLAT"]').getAttribute('data-pfns')).toBe('2 3')
    expect(await view.locator('g.cell.violating[data-lane="host page table"]').getAttribute('data-pfns')).toBe('4')
    expect(await view.locator('g.frame.violating').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-pfn')))).toEqual(['3', '4'])
    expect((await view.locator('g.violation-note').textContent())?.replace(/\s+/g, '')).toBe(`no-stale-mapping: ${r.message}`.replace(/\s+/g, ''))
    expect(await view.locator('p.message').innerText()).toBe(`no-stale-mapping: ${r.message}`)
    // The step is in the address: a link to it.
    expect(new URL(page.url()).hash).toBe(`#step-${r.at}`)
    mkdirSync(output, { recursive: true })
    const shot = join(output, 'report-violating-step.png')
    await page.screenshot({ path: shot })
    expect(statSync(shot).size).toBeGreaterThan(10_000)
    // No request left the file: the page is self-contained.
    expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([])
  })

  it('← steps back, past the start stays at 0, and a #step-N link opens that step', async () => {
    const r = reportOf('fault-invalidate-no-retry-no-stale-mapping.json')
    await page.goto(`${r.url}#step-7`)
    expect(await current(page)).toBe('7')
    expect(await page.locator('.diagram tr.current').getAttribute('id')).toBe('step-7')
    await page.keyboard.press('ArrowLeft')
    expect(await current(page)).toBe('6')
    for (let n = 0; n < 10; n++) await page.keyboard.press('ArrowLeft')
    expect(await current(page)).toBe('0')
    await page.locator('nav button[data-go="1"]').first().click()
    expect(await current(page)).toBe('1')
    // Opened without a step in the address, the page shows the violating step.
    await page.goto(r.url)
    expect(await current(page)).toBe(String(r.at))
    expect(await visibleView(page).locator('g.cell.violating[data-lane="SLAT"]').getAttribute('data-pfns')).toBe('1')
  })

  it('prints the diagram and the picture of the violating step, without the navigation', async () => {
    const r = reportOf('fault-invalidate-no-retry-no-stale-mapping.json')
    await page.goto(`${r.url}#step-3`)
    await page.emulateMedia({ media: 'print' })
    try {
      expect(await page.locator('nav').first().isVisible()).toBe(false)
      const shown = await page.locator('.step-view').evaluateAll((vs) => vs.filter((v) => getComputedStyle(v).display !== 'none').map((v) => v.getAttribute('data-step')))
      expect(shown).toEqual([String(r.at)])
      expect(await page.locator('.diagram tr[data-step]').count()).toBe(r.steps + 1)
    } finally {
      await page.emulateMedia({ media: 'screen' })
    }
  })
})
