/**
 * acc, acc_norm and their standard errors, as lm-evaluation-harness computes them for
 * multiple-choice tasks (`ConfigurableTask.process_results`, `metrics.mean_stderr`).
 */

/** Index of the first maximum, like np.argmax (ties go to the lower index). */
export function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/**
 * The harness normalises by `len(choice)` of the `doc_to_choice` string, without the target
 * delimiter: Python's len, i.e. Unicode code points, not bytes and not UTF-16 units. The two
 * differ from a byte count only for non-ASCII choices.
 */
export function choiceLength(choice: string): number {
  let n = 0;
  for (const _ of choice) n++;
  return n;
}

export interface DocScore {
  /** 1 if the highest log-likelihood is the gold choice, else 0 */
  acc: number;
  /** 1 if the highest log-likelihood per character is the gold choice, else 0 */
  acc_norm: number;
  pred: number;
  predNorm: number;
}

export function scoreDoc(logprobs: readonly number[], choices: readonly string[], gold: number): DocScore {
  const pred = argmax(logprobs);
  const predNorm = argmax(logprobs.map((lp, i) => lp / choiceLength(choices[i]!)));
  return { acc: pred === gold ? 1 : 0, acc_norm: predNorm === gold ? 1 : 0, pred, predNorm };
}

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n − 1), the harness's `sample_stddev`. */
export function sampleStddev(xs: readonly number[]): number {
  const mu = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - mu) * (x - mu);
  return Math.sqrt(s / (xs.length - 1));
}

/** Standard error of the mean, `mean_stderr`; null where it is undefined (fewer than 2 samples). */
export function meanStderr(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  return sampleStddev(xs) / Math.sqrt(xs.length);
}
