/**
 * Chart rendering without a browser: vega-lite spec -> vega spec -> SVG string (vega's headless
 * 'none' renderer), and SVG -> PNG with resvg. resvg draws no text without font files, so we
 * load the system fonts and pick a sans-serif family that is actually installed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';

/** Font stack in the SVGs: what a browser and resvg will both likely find, then the generic. */
export const FONT_STACK = 'DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // vega-lite warns on stderr about layout choices it resolves itself; the CLI output stays clean.
  const quiet = vega.logger(vega.None);
  const view = new vega.View(vega.parse(compile(spec, { logger: quiet }).spec), { renderer: 'none', logLevel: vega.None });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

// Known regular sans-serif font files and their family names, in order of preference.
const SANS_FILES: [RegExp, string][] = [
  [/^DejaVuSans\.ttf$/i, 'DejaVu Sans'],
  [/^LiberationSans-Regular\.ttf$/i, 'Liberation Sans'],
  [/^Arial\.ttf$/i, 'Arial'],
  [/^Helvetica\.ttc$/i, 'Helvetica'],
  [/^NotoSans-Regular\.[ot]tf$/i, 'Noto Sans'],
  [/^FreeSans\.[ot]tf$/i, 'FreeSans'],
  [/^Roboto-Regular\.ttf$/i, 'Roboto'],
];
const FONT_EXT = /\.(ttf|otf|ttc)$/i;

/** Where fonts are looked for: $SHORTENED_FONT_DIR first, then the usual system folders. */
export function fontDirs(): string[] {
  const home = os.homedir();
  const dirs = [
    process.env['SHORTENED_FONT_DIR'],
    '/usr/share/fonts', '/usr/local/share/fonts', path.join(home, '.fonts'), path.join(home, '.local/share/fonts'),
    '/System/Library/Fonts', '/Library/Fonts', 'C:\\Windows\\Fonts',
  ];
  return dirs.filter((d): d is string => !!d && fs.existsSync(d));
}

export interface FontSetup {
  /** font files found (capped: we only need to know whether there are any and which sans to use) */
  count: number;
  /** the installed sans-serif family resvg will use for text, if a known one was found */
  family?: string;
}

function scanFonts(): FontSetup {
  let count = 0;
  let best = SANS_FILES.length;
  const walk = (dir: string, depth: number): void => {
    if (depth > 6 || count > 20000) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(path.join(dir, e.name), depth + 1);
      else if (FONT_EXT.test(e.name)) {
        count++;
        const i = SANS_FILES.findIndex(([re]) => re.test(e.name));
        if (i >= 0 && i < best) best = i;
      }
    }
  };
  for (const d of fontDirs()) walk(d, 0);
  return best < SANS_FILES.length ? { count, family: SANS_FILES[best]![1] } : { count };
}

let fonts: FontSetup | undefined;
let warned = false;

export function fontSetup(): FontSetup {
  fonts ??= scanFonts();
  return fonts;
}

function resvgOptions(): ResvgRenderOptions {
  const f = fontSetup();
  if (f.count === 0 && !warned) {
    warned = true;
    process.stderr.write('report: no font files found, PNG charts will have no text (install e.g. fonts-dejavu-core, or point SHORTENED_FONT_DIR at a folder of .ttf files); the HTML and SVG charts are unaffected\n');
  }
  const extra = process.env['SHORTENED_FONT_DIR'];
  return {
    font: {
      loadSystemFonts: true,
      ...(extra ? { fontDirs: [extra] } : {}),
      ...(f.family ? { defaultFontFamily: f.family, sansSerifFamily: f.family } : {}),
    },
    // 2x so the PNG stays sharp when shown at the SVG's size on high-density screens.
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    logLevel: 'off',
  };
}

export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, resvgOptions()).render().asPng();
}

/**
 * Prefixes every id in an SVG (vega names clip paths "clip1", ...) so several SVGs can be inlined
 * in one HTML page without their url(#id) references resolving to another chart's element.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\bid="([^"]+)"/g)) ids.add(m[1]!);
  if (ids.size === 0) return svg;
  const esc = [...ids].map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return svg
    .replace(new RegExp(`\\bid="(${esc})"`, 'g'), `id="${prefix}-$1"`)
    .replace(new RegExp(`url\\(#(${esc})\\)`, 'g'), `url(#${prefix}-$1)`)
    .replace(new RegExp(`href="#(${esc})"`, 'g'), `href="#${prefix}-$1"`);
}
