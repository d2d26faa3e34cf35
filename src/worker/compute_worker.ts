// The compute worker: a worker_threads Worker that owns the tensors. It loads the model and this
// worker's view of the private data once, then trains and evaluates on request. It never touches
// the network. Every failure becomes an error reply: an uncaught exception would make the wasm
// backend end the whole process.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './backend.ts';
import { loadModel } from './models/index.ts';
import { resolveModelDir } from './models/embedded.ts';
import { initTrainable } from './models/lora.ts';
import type { Model } from './models/model.ts';
import type { Tokenizer } from './io/tokenizer.ts';
import { localTrain } from './spry/client.ts';
import { type Runner, startRunner } from './engine/index.ts';
import { closeEngine, setThreads } from './engine/session.ts';
import { processMemory } from './process_memory.ts';
import { evaluate } from './spry/evaluate.ts';
import type { EncodedSet } from './spry/batching.ts';
import { loadTaskData } from './data/task_data.ts';
import { encodeExamples } from './data/batches.ts';
import type { Example } from './data/examples.ts';
import { DataSpec, type LocalFinetune, ModelSpec, type WorkerReply, type WorkerRequest } from '../shared/worker_protocol.ts';
import type { Weights } from '../shared/units.ts';
import { methodSpec } from '../shared/methods.ts';

if (!parentPort) throw new Error('compute_worker.ts must run in a worker thread');
const port = parentPort;

let model: Model | null = null;
/** the model on ONNX Runtime, when its family is ported and FEDFORWARD_ENGINE is not "tfjs" */
let runner: Runner | null = null;
/** models loaded so far: a session cache key never outlives its weights */
let loads = 0;
const clients = new Map<string, { train: EncodedSet; test: EncodedSet }>();

function encode(tok: Tokenizer, examples: Example[], maxLength: number): EncodedSet {
  return { ids: encodeExamples(tok, examples, maxLength), labels: examples.map((e) => e.label), pad: tok.padId ?? 0 };
}

const need = (client: string) => {
  const c = clients.get(client);
  if (!model || !c) throw new Error(model ? `unknown client "${client}"` : 'the worker has not been initialised');
  return c;
};

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  switch (req.type) {
    case 'init': {
      const spec = ModelSpec.parse(req.model);
      const dataSpec = DataSpec.parse(req.data);
      const backend = await initBackend(spec.backend);
      const data = await loadTaskData(dataSpec);
      const classification = data.labels.length > 0;
      const task = classification ? ({ kind: 'classification', numLabels: data.labels.length } as const) : ({ kind: 'causal-lm' } as const);
      const loaded = await loadModel(resolveModelDir(spec.model), task, spec.lora);
      if (!loaded.tokenizer) throw new Error(`${spec.model} has no tokenizer.json`);
      model?.dispose();
      model = loaded.model;
      const engine = await startEngine(`${loaded.dir}#${++loads}`);
      clients.clear();
      for (const c of data.clients)
        clients.set(c.id, { train: encode(loaded.tokenizer, c.train, spec.maxLength), test: encode(loaded.tokenizer, c.test, spec.maxLength) });
      const init = initTrainable(model.trainable, spec.initSeed);
      const initial = new Map([...init].map(([k, v]) => [k, v.dataSync() as Float32Array]));
      tf.dispose([...init.values()]);
      return {
        id: req.id,
        type: 'init',
        result: {
          backend: engine ? `${engine}; ${backend.name} for the rest` : backend.name,
          family: model.family,
          lora: model.lora,
          specs: model.trainable.map((s) => ({ name: s.name, shape: s.shape })),
          units: model.units,
          labels: data.labels,
          clients: data.clients.map((c) => ({ id: c.id, train: c.train.length, test: c.test.length, labelCounts: c.labelCounts })),
          initial,
        },
      };
    }
    case 'train': {
      const c = need(req.client);
      const t0 = performance.now();
      const task = { client: req.client, roundSeed: req.roundSeed, method: methodSpec(req.method), hp: req.hp, units: req.units, globals: req.globals };
      const result = await localTrain(model!, task, c.train, (p) => port.postMessage({ id: req.id, type: 'progress', client: req.client, ...p, memory: processMemory() } satisfies WorkerReply), runner);
      return { id: req.id, type: 'train', result, memory: processMemory(), ms: performance.now() - t0 };
    }
    case 'close':
      await closeEngine();
      return { id: req.id, type: 'closed' };
    case 'evaluate': {
      const c = need(req.client);
      const globals = req.finetune ? await finetuned(req.client, req.globals, req.finetune, c.train) : req.globals;
      const result = await evaluate(model!, globals, c.test, req.batchSize, Infinity, runner);
      return { id: req.id, type: 'evaluate', result, memory: processMemory() };
    }
  }
}

/** The ONNX Runtime engine for the loaded model (startRunner), on the pool's share of the cores. */
async function startEngine(key: string): Promise<string | null> {
  // the previous model's runner must not serve the new model while the engine starts
  runner = null;
  const threads = (workerData as { threads?: number } | null)?.threads;
  if (threads) setThreads(threads);
  const started = await startRunner(model!, key);
  runner = started.runner;
  return started.detail;
}

/** The global adapter after the client's own local training on every unit (weights, not jvps). */
async function finetuned(client: string, globals: Weights, f: LocalFinetune, train: EncodedSet): Promise<Weights> {
  const hp = { ...f.hp, spryMode: 'epoch' as const };
  const task = { client, roundSeed: f.seed, method: methodSpec(f.method), hp, units: model!.units.map((u) => u.name), globals };
  const update = await localTrain(model!, task, train, undefined, runner);
  return new Map([...globals, ...update.weights!]);
}

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

port.on('message', (req: WorkerRequest) => {
  handle(req)
    .then((reply) => port.postMessage(reply))
    .catch((e: unknown) => port.postMessage({ id: req?.id ?? -1, type: 'error', message: oneLine(e) } satisfies WorkerReply));
});
process.on('uncaughtException', (e) => port.postMessage({ id: -1, type: 'error', message: oneLine(e) } satisfies WorkerReply));
process.on('unhandledRejection', (e) => port.postMessage({ id: -1, type: 'error', message: oneLine(e) } satisfies WorkerReply));
