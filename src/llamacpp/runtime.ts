/**
 * llama.cpp through node-llama-cpp (prebuilt native binaries), loaded only when asked for: the rest
 * of the toolkit works where the native code cannot load, and there the error says so in one line.
 * Nothing is built or downloaded at run time (`build: 'never'`, `skipDownload`), and it runs on the
 * CPU (`gpu: false`).
 */
import { UserError } from '../util/errors.js';

export type NodeLlamaCpp = typeof import('node-llama-cpp');
export type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;

let loaded: Promise<{ lib: NodeLlamaCpp; llama: Llama }> | null = null;

/** The node-llama-cpp module and its CPU llama.cpp instance (loaded once per process). */
export function llamaCpp(): Promise<{ lib: NodeLlamaCpp; llama: Llama }> {
  loaded ??= (async () => {
    let lib: NodeLlamaCpp;
    try {
      lib = await import('node-llama-cpp');
    } catch (e) {
      throw new UserError(`--engine llama.cpp: node-llama-cpp is not installed or cannot load (${firstLine(e)}); install it with npm i -E node-llama-cpp@3.21.1`);
    }
    try {
      const llama = await lib.getLlama({ gpu: false, build: 'never', skipDownload: true, progressLogs: false, logLevel: lib.LlamaLogLevel.error });
      return { lib, llama };
    } catch (e) {
      throw new UserError(`--engine llama.cpp: llama.cpp's native binary cannot load on this machine (${firstLine(e)})`);
    }
  })();
  loaded.catch(() => { loaded = null; });
  return loaded;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}
