/**
 * Large arrays (weights) on 2 MB pages where the OS grants them (Linux transparent huge pages,
 * through the native addon), plain ArrayBuffers elsewhere.
 *
 * Why: a decode step streams every weight once, and on 4 KB pages each page of it costs a TLB miss
 * and a page walk. On Zen 3 the decode's GEMVs read 11-13% faster from 2 MB pages, and a memcpy
 * 7-8% faster (so the bandwidth bound that bench:vs-torch prints is measured on them too).
 * SHORTENED_HUGE_PAGES=off keeps every array on ordinary pages (for comparing the two).
 */
import { loadNativeAddon, type NativeKernels } from './native-addon.js';

/** Arrays from this size up go on huge pages (smaller ones would round up to 2 MB). */
export const HUGE_PAGE_MIN_BYTES = 4 << 20;

let addon: NativeKernels | null | undefined;

function hugeAddon(): NativeKernels | null {
  if (addon === undefined) {
    if (process.env.SHORTENED_HUGE_PAGES === 'off') addon = null;
    else {
      try { addon = loadNativeAddon(); } catch { addon = null; }
    }
  }
  return addon;
}

/**
 * A zeroed buffer of `bytes`, V8's own (freed as any other): when it is large and huge pages are
 * available, its 2 MB-aligned interior is backed by them as it is filled.
 */
export function largeBuffer(bytes: number): ArrayBuffer {
  const buf = new ArrayBuffer(bytes);
  if (bytes >= HUGE_PAGE_MIN_BYTES) hugeAddon()?.hugePagesForNew(buf);
  return buf;
}

/** Whether large buffers get huge pages here (the addon is built and the OS takes the advice). */
export function hugePagesAvailable(): boolean {
  return (hugeAddon()?.hugePagesForNew(new ArrayBuffer(HUGE_PAGE_MIN_BYTES)) ?? 0) > 0;
}
