/**
 * Progress bars on stderr (cli-progress). On a terminal the bar redraws in place; otherwise a
 * line is printed at most every few seconds, so logs stay readable. SHORTENED_QUIET=1 silences it.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, extra?: string): void;
  stop(): void;
}

export function progress(label: string, total: number, unit = ''): Progress {
  if (process.env['SHORTENED_QUIET'] === '1') return { update() {}, stop() {} };
  const t0 = Date.now();
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total}${unit ? ' ' + unit : ''} | {duration_formatted} elapsed, eta {eta_formatted} {extra}`,
      stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 20,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { extra: '' });
    return { update: (d, extra) => bar.update(d, { extra: extra ?? '' }), stop: () => bar.stop() };
  }
  let last = 0, finished = false;
  return {
    update(done, extra) {
      const now = Date.now();
      if (finished || (now - last < 5000 && done < total)) return;
      last = now;
      finished = done >= total;
      process.stderr.write(`${label}: ${done}/${total}${unit ? ' ' + unit : ''} (${((now - t0) / 1000).toFixed(1)} s)${extra ? ' ' + extra : ''}\n`);
    },
    stop() {},
  };
}

/** An onProgress(done, total) callback that opens a bar on its first call and closes it at the end. */
export function progressCallback(label: string, unit = ''): (done: number, total: number) => void {
  let bar: Progress | null = null;
  return (done, total) => {
    bar ??= progress(label, total, unit);
    bar.update(done);
    if (done >= total) { bar.stop(); bar = null; }
  };
}
