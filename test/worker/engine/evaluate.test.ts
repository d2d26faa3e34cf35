// Evaluation on ONNX Runtime: the loss, accuracy and class counts TensorFlow.js gives, on the
// embedded model and on random Llama and BERT checkpoints, and a case checked by hand.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel, loadModel } from '../../../src/worker/models/index.ts';
import { EMBEDDED_MODEL_DIR } from '../../../src/worker/models/embedded.ts';
import { type RandomShape, randomCheckpoint } from '../../../src/worker/models/random.ts';
import type { Model, Task, TensorMap } from '../../../src/worker/models/model.ts';
import { evaluate } from '../../../src/worker/spry/evaluate.ts';
import type { EncodedSet } from '../../../src/worker/spry/batching.ts';
import { runnerFor } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { Rng } from '../../../src/shared/spry/rng.ts';
import { globalsOf } from '../../main/spry/per_iteration_setup.ts';

const LORA = { r: 2, alpha: 4, dropout: 0.1 };

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

/** n examples of 2 to 20 tokens (more than one batch of 32, the last one partial), labels 0..c−1. */
function testSet(n: number, vocab: number, classes: number, pad: number): EncodedSet {
  const rng = new Rng(`evaluate/${vocab}/${classes}`);
  const ids = Array.from({ length: n }, () => Array.from({ length: 2 + rng.int(19) }, () => rng.int(vocab)));
  return { ids, labels: ids.map(() => (classes ? rng.int(classes) : -1)), pad };
}

function setup(config: Record<string, unknown>, tensors: TensorMap, task: Task, targetModules: string[], key: string) {
  const model = createModel(config, tensors, task, { ...LORA, targetModules });
  return { model, runner: runnerFor(model, key), globals: globalsOf(model.trainable) };
}

async function agree(model: Model, runner: ReturnType<typeof runnerFor>, globals: ReturnType<typeof globalsOf>, data: EncodedSet) {
  const ort = await evaluate(model, globals, data, 32, Infinity, runner);
  const tfjs = await evaluate(model, globals, data, 32, Infinity);
  expect(Math.abs(ort.loss - tfjs.loss) / tfjs.loss).toBeLessThan(1e-5);
  expect({ ...ort, loss: 0 }).toEqual({ ...tfjs, loss: 0 });
  return ort;
}

const LLAMA: RandomShape = { family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 41, positions: 32 };
const BERT: RandomShape = { family: 'bert', layers: 2, hidden: 16, heads: 2, intermediate: 24, vocab: 41, positions: 32 };

describe('evaluation on ONNX Runtime gives what TensorFlow.js gives', () => {
  it('the embedded model: classification (loss, accuracy, class counts) and language modelling', { timeout: 120_000 }, async () => {
    const cls = { kind: 'classification', numLabels: 3 } as const;
    const { model, runner, globals } = await (async () => {
      const loaded = await loadModel(EMBEDDED_MODEL_DIR, cls, LORA);
      return { model: loaded.model, runner: runnerFor(loaded.model, 'embedded/evaluate'), globals: globalsOf(loaded.model.trainable) };
    })();
    const data = testSet(40, 8191, 3, 8191);
    const r = await agree(model, runner, globals, data);
    // predictions spread over the classes: counts that all sit in one class would compare little
    expect(r.predicted!.filter((x) => x > 0).length).toBeGreaterThan(1);
    expect(r.total).toBe(40);
    model.dispose();

    const lm = await loadModel(EMBEDDED_MODEL_DIR, { kind: 'causal-lm' }, LORA);
    const lmRunner = runnerFor(lm.model, 'embedded/evaluate-lm');
    const l = await agree(lm.model, lmRunner, globalsOf(lm.model.trainable), testSet(40, 8191, 0, 8191));
    expect(l.predicted).toBeUndefined();
    lm.model.dispose();
  });

  for (const [name, shape, targets] of [['random Llama (grouped-query heads)', LLAMA, ['q_proj', 'v_proj', 'down_proj']], ['random BERT', BERT, ['query', 'value']]] as const)
    it(`${name}: classification${shape.family === 'llama' ? ' and language modelling' : ''}`, { timeout: 60_000 }, async () => {
      const { config, tensors } = randomCheckpoint(shape, 4);
      const c = setup(config, tensors, { kind: 'classification', numLabels: 4 }, [...targets], `random/${shape.family}/evaluate`);
      const r = await agree(c.model, c.runner, c.globals, testSet(37, shape.vocab, 4, 0));
      expect(r.predicted!.filter((x) => x > 0).length).toBeGreaterThan(1);
      c.model.dispose();
      if (shape.family !== 'llama') return;
      const lm = setup(config, tensors, { kind: 'causal-lm' }, [...targets], `random/${shape.family}/evaluate-lm`);
      await agree(lm.model, lm.runner, lm.globals, testSet(37, shape.vocab, 0, 0));
      lm.model.dispose();
    });
});

describe('evaluation on ONNX Runtime, checked by hand', () => {
  it('a zero head: every logit 0, so the loss is ln C, every prediction class 0, and accuracy the share of label 0', async () => {
    const { config, tensors } = randomCheckpoint(LLAMA, 6);
    const { model, runner, globals } = setup(config, tensors, { kind: 'classification', numLabels: 3 }, ['q_proj'], 'random/llama/evaluate-zero');
    globals.get('score.weight')!.fill(0);
    const data = testSet(35, LLAMA.vocab, 3, 0);
    const r = await evaluate(model, globals, data, 32, Infinity, runner);
    const zeros = data.labels.filter((l) => l === 0).length;
    expect(Math.abs(r.loss - Math.log(3)) / Math.log(3)).toBeLessThan(1e-6);
    expect(r).toMatchObject({ correct: zeros, total: 35, predicted: [35, 0, 0], actual: [0, 1, 2].map((c) => data.labels.filter((l) => l === c).length) });
    model.dispose();
  });

  it('the classification loss is the mean over examples: batches of 32 and of 1 give the same', async () => {
    const { config, tensors } = randomCheckpoint(LLAMA, 7);
    const { model, runner, globals } = setup(config, tensors, { kind: 'classification', numLabels: 2 }, ['v_proj'], 'random/llama/evaluate-batching');
    const data = testSet(35, LLAMA.vocab, 2, 0);
    const [a, b] = [await evaluate(model, globals, data, 32, Infinity, runner), await evaluate(model, globals, data, 1, Infinity, runner)];
    expect(Math.abs(a.loss - b.loss) / b.loss).toBeLessThan(1e-5);
    expect({ ...a, loss: 0 }).toEqual({ ...b, loss: 0 });
    model.dispose();
  });
});
