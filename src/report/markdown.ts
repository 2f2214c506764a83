/**
 * The report's Markdown twin: the same sections and tables, charts as PNG images (rendered by
 * every Markdown viewer) linking to the SVG files beside them.
 */
import type { ReportDoc, Section } from './sections.js';
import type { Table } from './tables.js';

/** Text safe inside a Markdown table cell. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function tableMarkdown(t: Table): string {
  const lines: string[] = [];
  if (t.caption) lines.push(`**${mdCell(t.caption)}**`, '');
  lines.push(`| ${t.head.map(mdCell).join(' | ')} |`);
  lines.push(`|${t.numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`);
  for (const r of t.rows) lines.push(`| ${r.map((c) => (c.strong ? `**${mdCell(c.text)}**` : mdCell(c.text))).join(' | ')} |`);
  for (const n of t.notes ?? []) lines.push('', n);
  return lines.join('\n');
}

/** Free text outside tables: angle brackets would be read as HTML tags. */
function mdText(s: string): string {
  return s.replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r?\n/g, ' ');
}

/** A fence longer than any backtick run in the text, so generated code cannot close it. */
function fence(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}text\n${text}\n${f}`;
}

function sectionMarkdown(s: Section, doc: ReportDoc): string {
  const parts = [`## ${s.title}`];
  for (const n of s.notes) parts.push(mdText(n));
  for (const c of s.charts) {
    const r = doc.charts.get(c.name);
    if (r) parts.push(`[![${r.title}](${r.pngFile})](${r.svgFile})\n\n[SVG](${r.svgFile}) · [PNG](${r.pngFile})`);
  }
  for (const t of s.tables) parts.push(tableMarkdown(t));
  for (const g of s.generations) {
    parts.push(`### Prompt: ${mdText(g.prompt)}`);
    for (const o of g.outputs) parts.push(`**${mdText(o.model)}**\n\n${fence(o.text)}`);
  }
  return parts.join('\n\n');
}

export function renderMarkdown(doc: ReportDoc): string {
  const toc = doc.sections.map((s) => `- [${s.title}](#${s.title.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')})`).join('\n');
  return [
    `# ${mdText(doc.title)}`,
    `_Generated ${doc.generated} by shorten report from ${doc.inputs.length} input file${doc.inputs.length === 1 ? '' : 's'}._`,
    toc,
    ...doc.sections.map((s) => sectionMarkdown(s, doc)),
    `<details><summary>Input files</summary>\n\n${doc.inputs.map((f) => `- ${f}`).join('\n')}\n\n</details>`,
  ].join('\n\n') + '\n';
}
