import { getLlama } from 'node-llama-cpp';
const llama = await getLlama({ gpu: false, build: 'never' });
const model = await llama.loadModel({ modelPath: process.argv[2], useMmap: false });
for (const [label, opts, ctxo] of [['plain', { temperature: 0 }, {}], ['topk0', { temperature: 0, topK: 0, topP: 1 }, {}], ['plain threads2', { temperature: 0 }, { threads: 2 }], ['plain threads2 batch', { temperature: 0 }, { threads: 2, batchSize: 512 }]]) {
  const ctx = await model.createContext({ contextSize: 256, ...ctxo });
  const seq = ctx.getSequence();
  const prompt = Array.from({ length: 12 }, (_, i) => 100 + i);
  for (let rep = 0; rep < 2; rep++) {
    await seq.clearHistory();
    let n = 0, t1 = 0; const t0 = performance.now();
    for await (const t of seq.evaluate(prompt, opts)) { if (n === 0) t1 = performance.now(); if (++n >= 128) break; }
    const dt = performance.now() - t1;
    if (rep) console.log(label, (127 / (dt / 1000)).toFixed(2), 'tok/s');
  }
  await seq.dispose(); await ctx.dispose();
}
