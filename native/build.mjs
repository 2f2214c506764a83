// Builds the native kernels (node-gyp, at npm install). They are optional: when this fails the
// engine runs on onnxruntime or WebAssembly, so a failure prints one line and exits 0.
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync, mkdirSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const r = spawnSync(cmd, args, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
mkdirSync(`${here}/build`, { recursive: true });
writeFileSync(`${here}/build/build.log`, `${r.stdout ?? ''}\n${r.stderr ?? ''}\n${r.error ?? ''}`);
if (r.status !== 0) {
  console.warn(`shortened: native kernels not built (${r.error ? r.error.message : `node-gyp exited ${r.status}`}; see native/build/build.log); GEMMs will run on onnxruntime or WebAssembly`);
} else {
  console.log('shortened: native kernels built');
}
