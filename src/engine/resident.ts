/**
 * 16-bit weights up to this many bytes in all (a ~1.2B-parameter model in bf16) are copied once,
 * on their first decode-sized product, into a WebAssembly memory shared with a worker pool, where
 * every GEMV reads them in place on all cores (ort-backend.ts). Decoding reads every weight once
 * per token, so this is what lets it approach the memory bandwidth (one thread cannot). It costs
 * a second copy of those weights (counted in the decode and zero-shot memory estimates); larger
 * models keep the single-threaded path.
 */
export const RESIDENT_MAX_BYTES = 2.5 * 2 ** 30;

/** Bytes of resident weight copies a decode-sized product would make for a model of `weightBytes` (16-bit when under 3 bytes a parameter). */
export function residentWeightBytes(weightBytes: number, params: number): number {
  return weightBytes <= RESIDENT_MAX_BYTES && weightBytes < 3 * params ? weightBytes : 0;
}
