/**
 * Model surgery: delete blocks and renumber the rest. The result shares weight tensors with the
 * source (no copy); saving writes them in their original dtype and names.
 */
import type { LlamaModel } from '../model/weights.js';
import { UserError } from '../util/errors.js';

export function removeBlocks(model: LlamaModel, remove: number[]): LlamaModel {
  const L = model.config.numLayers;
  const drop = new Set(remove);
  for (const b of drop) if (b < 0 || b >= L) throw new UserError(`block index ${b} out of range [0, ${L - 1}]`);
  if (drop.size >= L) throw new UserError(`cannot remove all ${L} blocks`);
  const keep = [...Array(L).keys()].filter((i) => !drop.has(i));
  const rawConfig: Record<string, unknown> = { ...model.rawConfig, num_hidden_layers: keep.length };
  // Per-layer config lists (e.g. layer_types, or our per-layer shapes) follow the kept layers.
  for (const [k, v] of Object.entries(rawConfig)) {
    if (Array.isArray(v) && v.length === L && k !== 'architectures') rawConfig[k] = keep.map((i) => v[i]);
  }
  return {
    config: { ...model.config, numLayers: keep.length, layers: keep.map((i) => model.config.layers[i]!) },
    rawConfig,
    weights: { ...model.weights, blocks: keep.map((i) => model.weights.blocks[i]!) },
  };
}
