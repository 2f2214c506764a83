// Child process of native-elementwise.test.ts: the elementwise kernels of the build that
// SHORTENED_NATIVE_ISA selects against WebAssembly; prints "<isa> ok" or exits non-zero.
import { NativeBackend, nativeIsa } from '../src/engine/native-backend.js';
import { checkElementwise } from './elementwise-helpers.js';

checkElementwise(new NativeBackend({ threads: 2 }));
console.log(`${nativeIsa()} ok`);
