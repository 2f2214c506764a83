/**
 * Strings to token ids, split where lm-evaluation-harness splits them (HFLM `_encode_pair`):
 *
 *   1. trailing whitespace of the context moves to the front of the continuation;
 *   2. whole = encode(context + continuation), ctx = encode(context);
 *   3. the continuation's tokens are whole[len(ctx):].
 *
 * Encoding the pair as one string is what makes the split fall where the model will see it: with
 * SentencePiece, " yes" alone encodes as ["▁", "yes"] but after "Answer:" as ["▁yes"].
 *
 * BOS: HFLM in lm-eval 0.4.0–0.4.9 encodes with add_special_tokens=False for causal models unless
 * add_bos_token=True is passed (only Gemma gets it automatically), and v0.3 (the paper's pinned
 * harness) never adds it, so the default here is no BOS. `addBos` prepends BOS to both encodings,
 * as add_bos_token=True (and lm-eval >= 0.4.10, which defers to the tokenizer's own setting, which
 * for Llama is on) does; the split point is unchanged. An empty context becomes the prefix token
 * (BOS, or EOS where there is none), with the continuation encoded on its own, as HFLM does.
 */
import type { TextTokenizer } from '../../io/tokenizer.js';
import type { LoglikelihoodRequest } from '../loglikelihood-types.js';

export interface EncodeOptions {
  /** prepend BOS to every context (lm-eval's add_bos_token=True); default false */
  addBos?: boolean;
}

/** Thrown when a pair cannot become a valid request (empty continuation after the split). */
export class EncodeError extends Error {}

function prefixToken(tok: TextTokenizer): number {
  const id = tok.bosId ?? tok.eosId;
  if (id === null) throw new EncodeError('the tokenizer has neither a BOS nor an EOS token to stand for an empty context');
  return id;
}

/**
 * Encodes requests that share one context string (the choices of a document), encoding the
 * context once. Returns one request per continuation, in order.
 */
export function encodePairs(tok: TextTokenizer, context: string, continuations: readonly string[], opts: EncodeOptions = {}): LoglikelihoodRequest[] {
  const bos = opts.addBos ? [prefixToken(tok)] : [];
  // step 1: the whitespace split is the same for every continuation, since it depends on the context only
  const trimmed = context.trimEnd();
  const moved = context.slice(trimmed.length);
  if (context === '' || trimmed === '') {
    // HFLM: context "" → [prefix_token_id] + encode(continuation). A whitespace-only context would
    // leave the harness an empty context after step 1; treat it the same way rather than fail.
    const prefix = [prefixToken(tok)];
    return continuations.map((c) => checked({ context: prefix, continuation: tok.encode(moved + c) }, c));
  }
  const ctx = [...bos, ...tok.encode(trimmed)];
  return continuations.map((c) => {
    const whole = [...bos, ...tok.encode(trimmed + moved + c)];
    // sliced blindly, like the harness: a token that merged across the boundary counts as continuation
    return checked({ context: ctx, continuation: whole.slice(ctx.length) }, c);
  });
}

function checked(req: LoglikelihoodRequest, continuation: string): LoglikelihoodRequest {
  if (req.continuation.length === 0) throw new EncodeError(`continuation ${JSON.stringify(continuation)} encodes to no tokens after the context`);
  return req;
}

/** One (context, continuation) pair, as the harness encodes it. */
export function encodePair(tok: TextTokenizer, context: string, continuation: string, opts: EncodeOptions = {}): LoglikelihoodRequest {
  return encodePairs(tok, context, [continuation], opts)[0]!;
}

/** The requests of a document's pairs, grouping pairs that share a context. */
export function encodeDocPairs(tok: TextTokenizer, pairs: readonly { context: string; continuation: string }[], opts: EncodeOptions = {}): LoglikelihoodRequest[] {
  const out: LoglikelihoodRequest[] = new Array(pairs.length);
  const byContext = new Map<string, number[]>();
  pairs.forEach((p, i) => {
    const list = byContext.get(p.context);
    if (list) list.push(i);
    else byContext.set(p.context, [i]);
  });
  for (const [context, idx] of byContext) {
    const reqs = encodePairs(tok, context, idx.map((i) => pairs[i]!.continuation), opts);
    idx.forEach((i, k) => (out[i] = reqs[k]!));
  }
  return out;
}
