/**
 * The review report: one self-contained HTML page (no network: its style,
 * script and pictures are inline, so it opens from file:// and as a CI
 * artifact) with the verdict matrix and, per violation, a step-through: the
 * race diagram with the current step highlighted, what the step changed,
 * and the memory-map picture of the state after it, the entries the
 * invariant names outlined at the violating step with its message beside
 * them. ←/→ step, every step has a link (#step-7 for the first trace,
 * #t2-step-7 for the second), and the page prints as the diagram with the
 * picture of each violating step.
 */
import { inferredMemoryMap, type MemoryMap } from '../model/memory-map.js'
import type { Scenario } from '../model/scenario.js'
import { changes } from './diagram.js'
import type { Trace } from './format.js'
import { memoryMapSvg, namedEntries } from './memory-map-svg.js'
import { replayTrace } from './replay.js'

/** A matrix row as the report draws it: each invariant's verdict, and against what was expected. */
export interface ReportCell {
  readonly text: string
  /** holds, vacuous, violated, new (unexpected violation), gone (expected, not reproduced), undecided, error */
  readonly kind: string
  /** The trace section of a violation. */
  readonly trace?: number
}

export interface ReportInput {
  readonly title: string
  readonly subtitle?: string
  readonly matrix?: { readonly columns: readonly string[]; readonly rows: readonly { readonly variant: string; readonly cells: readonly ReportCell[] }[] }
  readonly traces: readonly Trace[]
  readonly scenario: Scenario
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** The memory map a scenario declares for these parameters, or one inferred from the world's arrays. */
export function memoryMapOf(scenario: Scenario, params: Readonly<Record<string, number>>, world: unknown): MemoryMap {
  if (!scenario.memoryMap) return inferredMemoryMap(world)
  return scenario.memoryMap(params, scenario.context?.(params) ?? {})
}

/** The id of trace k's step n: `step-n` for the first, so that `#step-7` links work. */
export const stepId = (k: number, n: number): string => (k === 0 ? `step-${n}` : `t${k + 1}-step-${n}`)

function traceSection(trace: Trace, k: number, scenario: Scenario): string {
  const r = replayTrace(trace, scenario)
  const names = r.instance.model.threadNames
  const acting = names.filter((t) => r.steps.some((s) => s.label.thread === t))
  const map = memoryMapOf(scenario, r.instance.params, r.initial)
  const seen = r.violations.find((v) => v.invariant === trace.violation.invariant)
  const at = seen?.step ?? r.steps.length
  const message = seen?.message ?? trace.violation.message
  const named = namedEntries(message, map)
  const worlds = [r.initial, ...r.steps.map((s) => s.after)]
  const rows = [
    `<tr id="${stepId(k, 0)}" data-step="0"${at === 0 ? ' class="violating-step"' : ''}><td class="n"><a href="#${stepId(k, 0)}">0</a></td><td colspan="${acting.length}">initial state</td></tr>`,
    ...r.steps.map((s) => {
      const cells = acting.map((t) => {
        if (t !== s.label.thread) return '<td></td>'
        const diffs = changes(s, names)
        return `<td class="act"><div class="label">${esc(s.label.text)}</div>${diffs.length ? `<div class="changes">${diffs.map(esc).join('<br>')}</div>` : ''}</td>`
      })
      return `<tr id="${stepId(k, s.index)}" data-step="${s.index}"${s.index === at ? ' class="violating-step"' : ''}><td class="n"><a href="#${stepId(k, s.index)}">${s.index}</a></td>${cells.join('')}</tr>`
    }),
  ]
  const views = worlds.map((w, n) => {
    const step = n === 0 ? null : r.steps[n - 1]
    const diffs = step ? changes(step, names) : []
    const head = step ? `step ${n}: ${step.label.thread}: ${step.label.text}` : 'the initial state'
    const violating = n === at
    return (
      `<div class="step-view${violating ? ' violating' : ''}" data-step="${n}"${n === 0 ? '' : ' hidden'}>` +
      `<h4>${esc(head)}</h4>` +
      `<div class="diff"><b>changed:</b> ${diffs.length ? diffs.map((d) => `<code>${esc(d)}</code>`).join(' ') : '<i>nothing</i>'}</div>` +
      (violating ? `<p class="message"><b>${esc(trace.violation.invariant)}</b>: ${esc(message)}</p>` : '') +
      memoryMapSvg(map, w, violating ? { ...named, message: `${trace.violation.invariant}: ${message}` } : undefined) +
      '</div>'
    )
  })
  const params = Object.entries(trace.params).map(([p, v]) => `${p}=${v}`).join(' ')
  const outcome = trace.violation.outcome !== undefined ? ` (this run ends with "${esc(trace.violation.outcome)}")` : ''
  return `<section class="trace" id="t${k + 1}" data-index="${k}" data-steps="${r.steps.length}" data-violation-step="${at}">
<h2>${esc(trace.variant)}: ${esc(trace.violation.invariant)}${outcome}</h2>
<p class="sub">${esc(trace.scenario)} --variant ${esc(trace.variant)} ${esc(params)} · ${trace.steps.length} steps · ${at === 0 ? 'broken in the initial state' : `broken after step ${at}`}</p>
<p class="message">${esc(message)}</p>
<nav><button type="button" data-go="-1" title="previous step (←)">←</button> <span class="pos"></span> <button type="button" data-go="1" title="next step (→)">→</button> <a href="#${stepId(k, at)}">the violating step</a></nav>
<div class="panes"><div class="diagram-pane"><table class="diagram"><thead><tr><th>#</th>${acting.map((t) => `<th>${esc(t)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>
<div class="state-pane">${views.join('\n')}</div></div>
</section>`
}

function matrixTable(m: NonNullable<ReportInput['matrix']>): string {
  const head = `<tr><th>variant</th>${m.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`
  const body = m.rows.map(
    (row) =>
      `<tr><th>${esc(row.variant)}</th>${row.cells
        .map((c) => `<td class="${esc(c.kind)}">${c.trace !== undefined ? `<a href="#${stepId(c.trace, 0)}" data-trace="${c.trace}">${esc(c.text)}</a>` : esc(c.text)}</td>`)
        .join('')}</tr>`,
  )
  return `<table class="matrix"><thead>${head}</thead><tbody>${body.join('\n')}</tbody></table>`
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111827; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-bottom: .2em; } .sub { color: #4b5563; margin-top: 0; }
code, .diagram, .matrix td { font-family: ui-monospace, monospace; font-size: 12px; }
table { border-collapse: collapse; }
.matrix th, .matrix td { border: 1px solid #d1d5db; padding: 3px 8px; text-align: left; }
.matrix td.holds { color: #166534; } .matrix td.vacuous { color: #92400e; }
.matrix td.violated { background: #fef3c7; } .matrix td.new, .matrix td.gone { background: #fecaca; font-weight: bold; }
.matrix td.undecided, .matrix td.error { background: #fde68a; }
.legend { color: #4b5563; font-size: 12px; }
.trace { border-top: 2px solid #d1d5db; margin-top: 2em; }
.message { color: #991b1b; }
nav { margin: .5em 0; } nav button { font-size: 14px; min-width: 2.5em; } .pos { display: inline-block; min-width: 8em; text-align: center; }
.panes { display: flex; gap: 1.5em; align-items: flex-start; }
.diagram-pane { flex: 0 1 auto; max-width: 40%; overflow-x: auto; }
.state-pane { flex: 1 1 auto; overflow-x: auto; position: sticky; top: 0; max-height: 100vh; overflow-y: auto; }
.diagram th, .diagram td { border-bottom: 1px solid #e5e7eb; padding: 2px 6px; vertical-align: top; text-align: left; }
.diagram td.n { color: #6b7280; } .diagram .changes { color: #4b5563; font-size: 11px; }
.diagram tr.current { background: #dbeafe; outline: 2px solid #2563eb; }
.diagram tr.violating-step td.n a { color: #dc2626; font-weight: bold; }
.diff code { background: #f3f4f6; padding: 0 3px; margin-right: 4px; }
@media print {
  nav { display: none; }
  .panes { display: block; } .diagram-pane { max-width: none; }
  .diagram tr.current { background: none; outline: none; }
  .step-view { display: none !important; } .step-view.violating { display: block !important; }
  .trace { break-before: page; }
}`

const SCRIPT = `
(function () {
  var traces = Array.prototype.slice.call(document.querySelectorAll('section.trace'));
  var active = 0;
  function id(k, n) { return k === 0 ? 'step-' + n : 't' + (k + 1) + '-step-' + n; }
  function show(k, n, push) {
    var t = traces[k]; if (!t) return;
    var last = Number(t.dataset.steps);
    n = Math.max(0, Math.min(last, n));
    active = k; t.dataset.current = String(n);
    t.querySelectorAll('.diagram tr[data-step]').forEach(function (r) { r.classList.toggle('current', Number(r.dataset.step) === n); });
    t.querySelectorAll('.step-view').forEach(function (v) { v.hidden = Number(v.dataset.step) !== n; });
    t.querySelector('.pos').textContent = 'step ' + n + ' of ' + last;
    if (push) { history.replaceState(null, '', '#' + id(k, n)); var row = document.getElementById(id(k, n)); if (row) row.scrollIntoView({ block: 'nearest' }); }
  }
  function fromHash() {
    var m = /^#(?:t(\\d+)-)?step-(\\d+)$/.exec(location.hash);
    if (m) { var k = m[1] ? Number(m[1]) - 1 : 0; show(k, Number(m[2]), false); var row = document.getElementById(id(k, Number(m[2]))); if (row) row.scrollIntoView({ block: 'nearest' }); }
    else { var t = /^#t(\\d+)$/.exec(location.hash); if (t) active = Number(t[1]) - 1; }
  }
  traces.forEach(function (t, k) {
    show(k, Number(t.dataset.violationStep), false);
    t.querySelectorAll('button[data-go]').forEach(function (b) { b.addEventListener('click', function () { show(k, Number(t.dataset.current) + Number(b.dataset.go), true); }); });
    t.querySelectorAll('.diagram tr[data-step]').forEach(function (r) { r.addEventListener('click', function () { show(k, Number(r.dataset.step), true); }); });
  });
  window.addEventListener('hashchange', fromHash);
  document.addEventListener('keydown', function (e) {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    var t = traces[active]; if (!t) return;
    e.preventDefault();
    show(active, Number(t.dataset.current) + (e.key === 'ArrowRight' ? 1 : -1), true);
  });
  fromHash();
})();`

export function htmlReport(input: ReportInput): string {
  const sections = input.traces.map((t, k) => traceSection(t, k, input.scenario))
  const legend = input.matrix
    ? '<p class="legend">VIOLATED: as the variant expects · NEW: a violation it does not expect · GONE: an expected violation that no longer reproduces · holds?: holds, but steps of the patch were never reached</p>'
    : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(input.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(input.title)}</h1>
${input.subtitle ? `<p class="sub">${esc(input.subtitle)}</p>` : ''}
${input.matrix ? `<section id="matrix">${matrixTable(input.matrix)}${legend}</section>` : ''}
${input.traces.length === 0 ? '<p>No violation: every invariant holds on every state explored.</p>' : ''}
${sections.join('\n')}
<script>${SCRIPT}</script>
</body></html>
`
}
