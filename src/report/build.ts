/**
 * `shorten report`: reads the JSON outputs of score / prune / train / eval / bench and writes
 *   <out>/report.html   one self-contained page (inline SVG charts, no scripts)
 *   <out>/report.md     the Markdown twin, showing charts/*.png and linking charts/*.svg
 *   <out>/charts/       one .svg and one .png per chart
 * Only these paths are replaced, so <out> may be a folder that also holds the inputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFolderAtomically } from '../io/model-folder.js';
import { UserError } from '../util/errors.js';
import { loadReportInputs } from './inputs.js';
import { buildSections, type RenderedChart, type ReportDoc } from './sections.js';
import { renderSvg, svgToPng } from './render.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

export interface ReportOptions {
  /** JSON files, or folders searched recursively for *.json with a known kind */
  inputs: string[];
  /** output folder (created if missing) */
  out: string;
  title?: string;
}

export interface ReportResult {
  /** path of report.html */
  html: string;
  /** path of report.md */
  markdown: string;
  /** paths of the chart files written (.svg and .png) */
  charts: string[];
}

export const DEFAULT_TITLE = 'Shortened LLaMA report';

/** Write via a temporary sibling and rename, so readers never see a half-written file. */
function writeFileAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export async function buildReport(opts: ReportOptions): Promise<ReportResult> {
  const data = loadReportInputs(opts.inputs);
  const sections = buildSections(data);

  // Vega renders asynchronously; all rendering happens before anything is written.
  const charts = new Map<string, RenderedChart>();
  const pngs = new Map<string, Buffer>();
  for (const c of sections.flatMap((s) => s.charts)) {
    const svg = await renderSvg(c.spec);
    charts.set(c.name, { name: c.name, title: c.title, svg, svgFile: `charts/${c.name}.svg`, pngFile: `charts/${c.name}.png` });
    pngs.set(c.name, svgToPng(svg));
  }

  const doc: ReportDoc = { title: opts.title ?? DEFAULT_TITLE, generated: new Date().toISOString(), inputs: data.files, sections, charts };
  const html = renderHtml(doc);
  const markdown = renderMarkdown(doc);

  if (fs.existsSync(opts.out) && !fs.statSync(opts.out).isDirectory()) throw new UserError(`report output is not a folder: ${opts.out}`);
  fs.mkdirSync(opts.out, { recursive: true });
  const chartDir = path.join(opts.out, 'charts');
  const written: string[] = [];
  writeFolderAtomically(chartDir, true, (tmp) => {
    for (const c of charts.values()) {
      fs.writeFileSync(path.join(tmp, `${c.name}.svg`), c.svg);
      fs.writeFileSync(path.join(tmp, `${c.name}.png`), pngs.get(c.name)!);
      written.push(path.join(chartDir, `${c.name}.svg`), path.join(chartDir, `${c.name}.png`));
    }
  });
  const htmlFile = path.join(opts.out, 'report.html');
  const mdFile = path.join(opts.out, 'report.md');
  writeFileAtomically(htmlFile, html);
  writeFileAtomically(mdFile, markdown);
  return { html: htmlFile, markdown: mdFile, charts: written };
}
