/**
 * Which blocks to remove: a count, a ratio (of blocks, or of parameters), or explicit indices,
 * taken from a criterion's removal order. The paper's "+" heuristic (on by default) never removes
 * the first four and the last two blocks.
 */
import { UserError } from '../util/errors.js';
import { blockParams, countParams, type LlamaConfig } from '../io/config.js';
import type { CriterionResult } from './criteria/types.js';

export interface Selection {
  remove?: number;
  ratio?: number;
  /** with ratio: a fraction of the model's parameters rather than of its blocks */
  params?: boolean;
  blocks?: number[];
  /** protect this many first and last blocks; default [4, 2]; [0, 0] = no "+" heuristic */
  protect?: [number, number];
}

export function protectedBlocks(L: number, protect: [number, number]): Set<number> {
  const s = new Set<number>();
  for (let i = 0; i < Math.min(protect[0], L); i++) s.add(i);
  for (let i = Math.max(0, L - protect[1]); i < L; i++) s.add(i);
  return s;
}

/** Number of blocks to remove for a selection (not for explicit blocks). */
export function removalCount(cfg: LlamaConfig, sel: Selection, order: number[]): number {
  const L = cfg.numLayers;
  if (sel.remove !== undefined) {
    if (!Number.isInteger(sel.remove) || sel.remove < 1) throw new UserError(`--remove must be a positive integer (got ${sel.remove})`);
    return sel.remove;
  }
  if (sel.ratio === undefined) throw new UserError('say how much to prune: --remove N, --ratio R or --blocks i,j,...');
  if (!(sel.ratio > 0 && sel.ratio < 1)) throw new UserError(`--ratio must be in (0, 1) (got ${sel.ratio})`);
  if (!sel.params) return Math.max(1, Math.round(sel.ratio * L));
  // Parameter ratio: the number of blocks, taken in removal order, whose parameter share is closest.
  const total = countParams(cfg);
  let removed = 0, best = 1, bestErr = Infinity;
  for (let n = 1; n <= order.length; n++) {
    removed += blockParams(cfg, cfg.layers[order[n - 1]!]!);
    const err = Math.abs(removed / total - sel.ratio);
    if (err < bestErr) { bestErr = err; best = n; }
  }
  return best;
}

/** The blocks to remove, sorted ascending. */
export function selectBlocks(cfg: LlamaConfig, result: CriterionResult | null, sel: Selection): number[] {
  const L = cfg.numLayers;
  const protect = sel.protect ?? [4, 2];
  let chosen: number[];
  if (sel.blocks) {
    for (const b of sel.blocks) if (!Number.isInteger(b) || b < 0 || b >= L) throw new UserError(`block index ${b} out of range [0, ${L - 1}]`);
    checkBlockList(sel.blocks);
    chosen = [...sel.blocks];
  } else {
    if (!result) throw new Error('a criterion result is needed');
    const prot = protectedBlocks(L, protect);
    const candidates = result.order.filter((b) => !prot.has(b));
    const n = removalCount(cfg, sel, candidates);
    if (n >= L) throw new UserError(`cannot remove ${n} of ${L} blocks: at least one block must remain`);
    if (n > candidates.length) {
      throw new UserError(`cannot remove ${n} blocks: only ${candidates.length} of ${L} are unprotected by the "+" heuristic (first ${protect[0]}, last ${protect[1]}); use --no-plus or --protect`);
    }
    if (result.criterion === 'angular') chosen = angularSpan(result, n, prot);
    else chosen = candidates.slice(0, n);
  }
  if (chosen.length >= L) throw new UserError(`cannot remove all ${L} blocks: at least one block must remain`);
  if (chosen.length === 0) throw new UserError('no blocks selected for removal');
  return chosen.sort((a, b) => a - b);
}

/**
 * An explicit block list must name each block once, in ascending order: a repeat or a shuffled
 * list is more likely a typo than a wish, so it is refused with the list the user probably meant.
 */
export function checkBlockList(blocks: readonly number[]): void {
  const meant = [...new Set(blocks)].sort((a, b) => a - b);
  const dup = blocks.find((b, i) => blocks.indexOf(b) !== i);
  if (dup !== undefined) throw new UserError(`--blocks ${blocks.join(',')} names block ${dup} more than once; did you mean --blocks ${meant.join(',')}?`);
  if (blocks.some((b, i) => i > 0 && b < blocks[i - 1]!)) throw new UserError(`--blocks ${blocks.join(',')} is not in ascending order; did you mean --blocks ${meant.join(',')}?`);
}

/** Gromov et al.: the contiguous span of n blocks with the smallest angular distance, avoiding protected blocks. */
function angularSpan(result: CriterionResult, n: number, prot: Set<number>): number[] {
  const ang = result.details['angular'] as (number | null)[][];
  const row = ang[n - 1];
  if (!row) throw new UserError(`angular: cannot remove ${n} contiguous blocks`);
  let best = -1;
  row.forEach((v, l) => {
    if (v === null) return;
    for (let i = l; i < l + n; i++) if (prot.has(i)) return;
    if (best < 0 || v < row[best]!) best = l;
  });
  if (best < 0) throw new UserError(`angular: no span of ${n} contiguous unprotected blocks`);
  return [...Array(n).keys()].map((i) => best + i);
}
