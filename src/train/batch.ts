/**
 * Micro-batches for training: token ids [B, T] and next-token targets [B, T] (-100 = no loss).
 *
 * Rows of different lengths are right-padded. Attention is causal, so padding after a row's last
 * real token cannot change any earlier position: with its targets at -100 the padded batch gives
 * exactly the loss and gradients of the rows run one by one (no attention mask needed).
 */
export interface Batch {
  ids: Int32Array;
  targets: Int32Array;
  B: number;
  T: number;
}

/** A tokenized training example: ids and per-token labels (-100 = not trained on). */
export interface Example {
  ids: number[];
  labels: number[];
}

/** Right-pad examples into one batch; target[t] = label[t+1] (labels are HF-style, unshifted). */
export function collate(examples: Example[], padId = 0): Batch {
  const B = examples.length;
  const T = Math.max(2, ...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(-100);
  examples.forEach((e, b) => {
    ids.set(e.ids, b * T);
    for (let t = 0; t + 1 < e.ids.length; t++) targets[b * T + t] = e.labels[t + 1]!;
  });
  return { ids, targets, B, T };
}

/** Rows of equal length, every next token a target (packed pretraining text). */
export function lmBatch(rows: Int32Array[]): Batch {
  const B = rows.length, T = rows[0]!.length;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(-100);
  rows.forEach((r, b) => {
    ids.set(r, b * T);
    for (let t = 0; t + 1 < T; t++) targets[b * T + t] = r[t + 1]!;
  });
  return { ids, targets, B, T };
}
