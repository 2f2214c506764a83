import fs from 'node:fs';
import path from 'node:path';

/** A Llama-2-7B-shaped folder whose weights are a sparse file: real headers and sizes, no disk used. */
export function sparse7b(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const cfg = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000, rms_norm_eps: 1e-5, max_position_embeddings: 4096, torch_dtype: 'bfloat16',
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [32000, 4096]], ['model.norm.weight', [4096]], ['lm_head.weight', [32000, 4096]]];
  for (let i = 0; i < 32; i++) {
    const p = `model.layers.${i}.`;
    shapes.push([`${p}self_attn.q_proj.weight`, [4096, 4096]], [`${p}self_attn.k_proj.weight`, [4096, 4096]], [`${p}self_attn.v_proj.weight`, [4096, 4096]],
      [`${p}self_attn.o_proj.weight`, [4096, 4096]], [`${p}mlp.gate_proj.weight`, [11008, 4096]], [`${p}mlp.up_proj.weight`, [11008, 4096]],
      [`${p}mlp.down_proj.weight`, [4096, 11008]], [`${p}input_layernorm.weight`, [4096]], [`${p}post_attention_layernorm.weight`, [4096]]);
  }
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, shape] of shapes) {
    const bytes = 2 * shape.reduce((a, d) => a * d, 1);
    header[name] = { dtype: 'BF16', shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(dir, 'model.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json]));
  fs.truncateSync(file, 8 + json.length + off); // sparse: 13.5 GB that take no space
  fs.writeFileSync(path.join(dir, 'ids.json'), JSON.stringify({ input_ids: [...Array(64)].map(() => [...Array(2048)].map((_, t) => (t * 7) % 32000)) }));
  return dir;
}

