/**
 * The report as one self-contained HTML page: CSS in a <style> tag, charts as inline SVG, no
 * scripts and no external resources, so it opens from disk or as an e-mail attachment.
 */
import type { ReportDoc, Section, GenerationGroup } from './sections.js';
import type { Table } from './tables.js';
import { scopeSvgIds } from './render.js';

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body { font-family: "DejaVu Sans", "Liberation Sans", Helvetica, Arial, sans-serif; color: #222; margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.45; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 40px; }
.meta { color: #666; font-size: 13px; }
nav a { margin-right: 14px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 8px 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
caption { text-align: left; font-weight: bold; padding-bottom: 4px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; } th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td[title] { cursor: help; }
.note { color: #555; font-size: 13px; margin: 4px 0; }
pre { background: #f7f7f7; padding: 8px 12px; white-space: pre-wrap; border-left: 3px solid #4c78a8; }
details { margin: 6px 0; }
`;

export function tableHtml(t: Table): string {
  const cls = (i: number): string => (t.numeric[i] ? ' class="num"' : '');
  const head = t.head.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${r.map((c, i) => {
    const title = c.title ? ` title="${escapeHtml(c.title)}"` : '';
    const text = c.strong ? `<strong>${escapeHtml(c.text)}</strong>` : escapeHtml(c.text);
    return `<td${cls(i)}${title}>${text}</td>`;
  }).join('')}</tr>`).join('\n');
  const caption = t.caption ? `<caption>${escapeHtml(t.caption)}</caption>` : '';
  const notes = (t.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n');
  return `<table>${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody></table>\n${notes}`;
}

function generationsHtml(groups: GenerationGroup[]): string {
  return groups.map((g) => [
    `<h3>${escapeHtml(g.prompt)}</h3>`,
    ...g.outputs.map((o) => `<details open><summary>${escapeHtml(o.model)}</summary><pre>${escapeHtml(o.text)}</pre></details>`),
  ].join('\n')).join('\n');
}

function sectionHtml(s: Section, doc: ReportDoc): string {
  const parts = [`<section id="${s.id}">`, `<h2>${escapeHtml(s.title)}</h2>`];
  for (const n of s.notes) parts.push(`<p class="note">${escapeHtml(n)}</p>`);
  if (s.charts.length) {
    parts.push('<div class="charts">');
    for (const c of s.charts) {
      const r = doc.charts.get(c.name);
      if (r) parts.push(`<figure id="chart-${c.name}" aria-label="${escapeHtml(r.title)}">${scopeSvgIds(r.svg, `c-${c.name}`)}</figure>`);
    }
    parts.push('</div>');
  }
  for (const t of s.tables) parts.push(tableHtml(t));
  if (s.generations.length) parts.push(generationsHtml(s.generations));
  parts.push('</section>');
  return parts.join('\n');
}

export function renderHtml(doc: ReportDoc): string {
  const nav = doc.sections.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(doc.title)}</h1>
<p class="meta">Generated ${escapeHtml(doc.generated)} by shorten report from ${doc.inputs.length} input file${doc.inputs.length === 1 ? '' : 's'}.</p>
<nav>${nav}</nav>
${doc.sections.map((s) => sectionHtml(s, doc)).join('\n')}
<details><summary class="meta">Input files</summary><ul class="meta">${doc.inputs.map((f) => `<li>${escapeHtml(f)}</li>`).join('')}</ul></details>
</body>
</html>
`;
}
