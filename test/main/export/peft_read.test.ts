// Reading a PEFT adapter as PEFT loads it: target_modules as a list or a regular expression must
// select every module whose tensors the file holds, and LoRA variants computed differently are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AdapterInfo, exportPeftAdapter, readPeftAdapter } from '../../../src/main/export/peft.ts';

const MODULES = ['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj', 'model.layers.1.self_attn.q_proj'];
const SPECS = MODULES.flatMap((m) => [
  { name: `${m}.lora_A.weight`, shape: [2, 4] },
  { name: `${m}.lora_B.weight`, shape: [4, 2] },
]);
let tmp = '';
let dir = '';
let config: Record<string, unknown> = {};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-peft-read-'));
  dir = path.join(tmp, 'adapter');
  const weights = new Map(SPECS.map((s, i) => [s.name, new Float32Array(8).fill(i + 1)]));
  const info: AdapterInfo = { family: 'llama', task: 'causal-lm', r: 2, alpha: 4, dropout: 0.1, targetModules: ['q_proj', 'down_proj'], baseModel: tmp };
  await exportPeftAdapter(dir, info, SPECS, weights);
  config = JSON.parse(await readFile(path.join(dir, 'adapter_config.json'), 'utf8'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const withConfig = async (patch: Record<string, unknown>) => {
  await writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify({ ...config, ...patch }));
  return readPeftAdapter(dir);
};

describe('readPeftAdapter', () => {
  it('reads back what the export wrote, by the module names PEFT uses', async () => {
    const a = await withConfig({});
    expect(a.taskType).toBe('CAUSAL_LM');
    expect({ ...a.lora, targetModules: [...a.lora.targetModules].sort() }).toEqual({ r: 2, alpha: 4, dropout: 0, targetModules: [...MODULES].sort() });
    expect([...a.tensors.keys()].sort()).toEqual(SPECS.map((s) => s.name).sort());
    expect(Array.from(a.tensors.get(SPECS[2]!.name)!.data)).toEqual(Array(8).fill(3));
  });

  it('target_modules: leaf names and a fully matching regex select the modules; a regex that misses one is refused', async () => {
    const selected = async (t: unknown) => [...(await withConfig({ target_modules: t })).lora.targetModules].sort();
    expect(await selected(['q_proj', 'down_proj'])).toEqual([...MODULES].sort());
    expect(await selected('model\\.layers\\.\\d+\\.(self_attn\\.q|mlp\\.down)_proj')).toEqual([...MODULES].sort());
    // ".*q_proj" selects the q_proj modules only: PEFT would not load down_proj's tensors
    await expect(withConfig({ target_modules: '.*q_proj' })).rejects.toThrow(/target_modules does not select model\.layers\.0\.mlp\.down_proj, whose tensors adapter_model\.safetensors holds$/);
    // the alternation is inside the full match: neither bare name matches, down_proj included
    await expect(withConfig({ target_modules: 'q_proj|down_proj' })).rejects.toThrow(/does not select model\.layers\.0\.mlp\.down_proj/);
  });

  it('refuses variants it would compute wrongly, in one line', async () => {
    await expect(withConfig({ use_dora: true })).rejects.toThrow(/adapter_config\.json: use_dora is not supported$/);
    await expect(withConfig({ use_rslora: true })).rejects.toThrow(/use_rslora is not supported$/);
    await expect(withConfig({ rank_pattern: { q_proj: 4 } })).rejects.toThrow(/rank_pattern is not supported$/);
    await expect(withConfig({ peft_type: 'IA3' })).rejects.toThrow(/peft_type "IA3" is not LORA$/);
  });
});
