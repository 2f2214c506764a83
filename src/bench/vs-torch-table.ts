/**
 * The `bench:vs-torch` table: one row per workload, our figure next to PyTorch's (fp32 and bf16)
 * and, for decoding, llama.cpp's, the speed ratio against the peers, and the pass target
 * with its verdict.
 *
 * Ratios are speed ratios, above 1 when ours is faster: ours / peer for rates (GFLOP/s, tokens/s),
 * peer / ours for times (seconds). A figure that was not measured (torch absent, workload not
 * run) is null and shows as "–"; a verdict that depends on it is "–" unless another of its
 * conditions already fails.
 */

export type Verdict = 'pass' | 'fail' | '–';

/** The pass targets. */
export const TARGETS = {
  /** raw GEMM: ours / torch.matmul (OpenBLAS) at least this */
  gemmRatio: 0.95,
  /** forward: speed ratio against PyTorch fp32 at least this */
  forwardRatio: 1.0,
  /** Taylor+: at most this many of our forwards (and faster than PyTorch fp32) */
  taylorForwards: 3.0,
  /** full training: tokens/s ratio against PyTorch fp32 at least this */
  trainRatio: 1.0,
  /** decode batch 1: at least this fraction of the memory-bandwidth bound */
  decodeOfBound: 0.8,
} as const;

/** All conditions true: pass; any false: fail; else (some unknown): –. */
export function verdict(conditions: (boolean | null)[]): Verdict {
  if (conditions.some((c) => c === false)) return 'fail';
  return conditions.every((c) => c === true) ? 'pass' : '–';
}

/** a / b, or null when either is missing or b is not positive. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || !(b > 0) || !Number.isFinite(a) ? null : a / b;
}

/** A number with `digits` decimals, or "–". */
export function fmt(x: number | null | undefined, digits = 2, unit = ''): string {
  return x == null || !Number.isFinite(x) ? '–' : `${x.toFixed(digits)}${unit}`;
}

const times = (x: number | null) => fmt(x, 2, '×');
/** a figure next to its bar: three digits where two would round it onto the bar (0.948 is no 0.95) */
const nearBar = (x: number | null, bar: number, unit = '') => fmt(x, x != null && Math.abs(x - bar) < 0.005 ? 3 : 2, unit);
const timesNear = (x: number | null, bar: number) => nearBar(x, bar, '×');
/** our f32 figure, and the bf16-compute one after it where it was measured */
const withBf16 = (f32: string, bf16: number | null | undefined, unit: string) => (bf16 == null ? f32 : `${f32}; bf16 compute ${fmt(bf16, 2, unit)}`);
const atLeast = (x: number | null, t: number) => (x == null ? null : x >= t);

/** What one run measured; each workload is absent when it was not run, each peer figure null without torch. */
export interface VsTorchResults {
  gemm?: { label: string; ours: number; torch: number | null };
  /** oursBf16: our forward with bf16 compute (AMX), null where this CPU has none */
  forward?: { label: string; ours: number; oursBf16?: number | null; fp32: number | null; bf16: number | null };
  /** seconds; oursForward: our forward's seconds on the same tokens (for "N forwards") */
  taylor?: { label: string; ours: number; oursForward: number | null; fp32: number | null };
  /** bf16NotPeer: PyTorch bf16 was not run because the CPU has no bf16 arithmetic (fp32 is then the peer to beat) */
  pplcrit?: { label: string; ours: number; oursForward: number | null; oursBf16?: number | null; fp32: number | null; bf16: number | null; bf16NotPeer?: boolean };
  /** tokens/s; bound: bandwidth / weight bytes read per token; llamacpp: llama.cpp on a GGUF export of the same weights */
  decode?: { label: string; ours: number; bound: number | null; bf16: number | null; llamacpp?: number | null };
  /** tokens/s */
  train?: { label: string; ours: number; fp32: number | null };
}

export interface TableRow {
  workload: string;
  ours: string;
  fp32: string;
  bf16: string;
  llamacpp: string;
  ratio: string;
  target: string;
  verdict: Verdict;
}

/** The rows of the workloads that ran, in the order. */
export function vsTorchRows(r: VsTorchResults): TableRow[] {
  const rows: TableRow[] = [];
  if (r.gemm) {
    const x = ratio(r.gemm.ours, r.gemm.torch);
    rows.push({
      workload: r.gemm.label, ours: fmt(r.gemm.ours, 1, ' GFLOP/s'), fp32: fmt(r.gemm.torch, 1, ' GFLOP/s'), bf16: '–', llamacpp: '–',
      ratio: timesNear(x, TARGETS.gemmRatio), target: `≥ ${TARGETS.gemmRatio}× torch.matmul`, verdict: verdict([atLeast(x, TARGETS.gemmRatio)]),
    });
  }
  if (r.forward) {
    // with bf16 compute, PyTorch bf16 is set against ours in bf16 (the same arithmetic)
    const f = r.forward, x32 = ratio(f.fp32, f.ours), x16 = ratio(f.bf16, f.oursBf16 ?? f.ours);
    rows.push({
      workload: f.label, ours: withBf16(fmt(f.ours, 2, ' s'), f.oursBf16, ' s'), fp32: fmt(f.fp32, 2, ' s'), bf16: fmt(f.bf16, 2, ' s'), llamacpp: '–',
      ratio: `${timesNear(x32, TARGETS.forwardRatio)} vs fp32, ${f.oursBf16 != null ? 'bf16 compute ' : ''}${times(x16)} vs bf16`, target: `≥ ${TARGETS.forwardRatio.toFixed(1)}× fp32`, verdict: verdict([atLeast(x32, TARGETS.forwardRatio)]),
    });
  }
  if (r.taylor) {
    const t = r.taylor, fw = ratio(t.ours, t.oursForward), x = ratio(t.fp32, t.ours);
    rows.push({
      workload: t.label, ours: `${fmt(t.ours, 2, ' s')} (${nearBar(fw, TARGETS.taylorForwards)} forwards)`, fp32: fmt(t.fp32, 2, ' s'), bf16: '–', llamacpp: '–',
      ratio: times(x), target: `≤ ${TARGETS.taylorForwards.toFixed(1)} forwards and faster than fp32`,
      verdict: verdict([fw == null ? null : fw <= TARGETS.taylorForwards, x == null ? null : x > 1]),
    });
  }
  if (r.pplcrit) {
    const p = r.pplcrit, fw = ratio(p.ours, p.oursForward), x32 = ratio(p.fp32, p.ours), x16 = ratio(p.bf16, p.oursBf16 ?? p.ours);
    rows.push({
      workload: p.label, ours: withBf16(`${fmt(p.ours, 2, ' s')} (${fmt(fw, 2)} forwards)`, p.oursBf16, ' s'), fp32: fmt(p.fp32, 2, ' s'), bf16: fmt(p.bf16, 2, ' s'), llamacpp: '–',
      ratio: `${times(x32)} vs fp32, ${p.oursBf16 != null ? 'bf16 compute ' : ''}${times(x16)} vs bf16`,
      ...(p.bf16NotPeer
        ? { target: 'faster than bf16 (no bf16 hardware here: than fp32)', verdict: verdict([x32 == null ? null : x32 > 1]) }
        : { target: 'faster than bf16', verdict: verdict([x16 == null ? null : x16 > 1]) }),
    });
  }
  if (r.decode) {
    const d = r.decode, of = ratio(d.ours, d.bound), x = ratio(d.ours, d.bf16), xl = ratio(d.ours, d.llamacpp);
    const ofBound = (tps: number | null | undefined) => { const f = ratio(tps, d.bound); return fmt(f == null ? null : 100 * f, 0, '%'); };
    // one peer: its ratio alone; both: each named
    const ratios = xl == null ? times(x) : x == null ? `${times(xl)} vs llama.cpp` : `${times(x)} vs bf16, ${times(xl)} vs llama.cpp`;
    rows.push({
      workload: d.label, ours: `${fmt(d.ours, 2, ' tok/s')} (${ofBound(d.ours)} of ${fmt(d.bound, 2, ' tok/s')} bound)`, fp32: '–', bf16: fmt(d.bf16, 2, ' tok/s'),
      llamacpp: d.llamacpp == null ? '–' : `${fmt(d.llamacpp, 2, ' tok/s')} (${ofBound(d.llamacpp)} of bound)`,
      ratio: ratios, target: `≥ ${(100 * TARGETS.decodeOfBound).toFixed(0)}% of bound`, verdict: verdict([atLeast(of, TARGETS.decodeOfBound)]),
    });
  }
  if (r.train) {
    const t = r.train, x = ratio(t.ours, t.fp32);
    rows.push({
      workload: t.label, ours: fmt(t.ours, 0, ' tok/s'), fp32: fmt(t.fp32, 0, ' tok/s'), bf16: '–', llamacpp: '–',
      ratio: timesNear(x, TARGETS.trainRatio), target: `≥ ${TARGETS.trainRatio.toFixed(1)}× fp32`, verdict: verdict([atLeast(x, TARGETS.trainRatio)]),
    });
  }
  return rows;
}

/** The rows as a Markdown table. */
export function rowsMarkdown(rows: TableRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '| workload | ours | PyTorch fp32 | PyTorch bf16 | llama.cpp | ours / peer (speed) | target | pass |',
    '|---|---:|---:|---:|---:|---:|---|:---:|',
  ];
  for (const r of rows) lines.push(`| ${[r.workload, r.ours, r.fp32, r.bf16, r.llamacpp, r.ratio, r.target, r.verdict].map(esc).join(' | ')} |`);
  return lines.join('\n') + '\n';
}
