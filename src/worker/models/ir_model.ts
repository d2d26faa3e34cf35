// A family's IR graph (src/worker/engine/models/) run by TensorFlow.js ops, behind the Model
// interface: the fallback backend (FEDFORWARD_ENGINE=tfjs, or no execution provider) and the
// tf.grads oracle, from the one definition that ONNX Runtime also runs.
import * as tf from '@tensorflow/tfjs';
import type { Dual } from '../fwd/dual.ts';
import type { Graph, Value } from '../engine/ir.ts';
import { jvpGraph, tangentName } from '../engine/jvp.ts';
import { type IrModel, type Traced, hostBatch, hostInputs } from '../engine/model.ts';
import { constants, hostTensor, interpret } from '../engine/tfjs.ts';
import { unitsOf } from './lora.ts';
import type { Model } from './model.ts';

interface Variant {
  graph: Graph;
  consts: Map<Value, tf.Tensor>;
  logits: Value;
  /** the logits' tangents [K, ...], null in a graph without perturbed inputs */
  tangents: Value | null;
  dropout: Traced['dropout'];
}

export function interpretedModel(ir: IrModel): Model {
  // every constant's tensor by its host array, shared by all the graphs below
  const shared = new Map<object, tf.Tensor>();
  const traces = new Map<boolean, Traced>();
  const variants = new Map<string, Variant>();

  /** the graph for dropout on or off and a set of perturbed tensors (module order), traced on first use */
  function variant(dropout: boolean, perturbed: string[]): Variant {
    const key = JSON.stringify([dropout, perturbed]);
    let v = variants.get(key);
    if (v) return v;
    let t = traces.get(dropout);
    if (!t) traces.set(dropout, (t = ir.trace(dropout)));
    if (perturbed.length === 0) v = { graph: t.graph, consts: constants(t.graph, shared), logits: t.logits, tangents: null, dropout: t.dropout };
    else {
      const j = jvpGraph(t.graph, [t.logits], perturbed);
      v = { graph: j.graph, consts: constants(j.graph, shared), logits: j.outs[0], tangents: j.tangents[0], dropout: t.dropout };
    }
    variants.set(key, v);
    return v;
  }

  // the weights become tensors now, outside any caller's tf.tidy, and `base` names them
  const plain = variant(false, []);
  const base = new Map<string, tf.Tensor>();
  for (const [value, c] of plain.graph.consts) {
    // rank 0 constants are the graph's scalars, not weights
    if (value.rank === 0) continue;
    // a weight read twice (GPT-2's tied embedding) is one tensor; two different ones must not share a name
    const t = plain.consts.get(value)!;
    if (base.has(c.name) && base.get(c.name) !== t) throw new Error(`two frozen tensors of the ${ir.family} graph are named "${c.name}"`);
    base.set(c.name, t);
  }

  return {
    ir,
    family: ir.family,
    dims: ir.dims,
    task: ir.task,
    lora: ir.lora,
    trainable: ir.trainable,
    units: unitsOf(ir.trainable),
    base,
    forward(batch, params, seed) {
      const dropout = seed !== null && ir.lora.dropout > 0;
      const perturbed = ir.trainable.filter((s) => params.get(s.name)?.t).map((s) => s.name);
      const v = variant(dropout, perturbed);
      const host = hostBatch(batch);
      // the graph's inputs include the loss's targets, which the logits do not read: zero labels do
      host.labels ??= new Int32Array(host.b);
      const feeds: Record<string, tf.Tensor> = {};
      for (const [name, f] of Object.entries(hostInputs(ir, host, dropout ? { sites: v.dropout, seed: seed! } : null))) feeds[name] = hostTensor(f.data, f.shape);
      const made = Object.values(feeds);
      // the adapter's own tensors, so that tf.grads with respect to them sees this computation
      for (const [name, d] of params) {
        feeds[name] = d.p;
        if (d.t) feeds[tangentName(name)] = d.t;
      }
      const out = interpret(v.graph, v.consts, v.tangents ? { p: v.logits, t: v.tangents } : { p: v.logits }, feeds);
      tf.dispose(made);
      return { p: out.p, t: out.t ?? null } satisfies Dual;
    },
    dispose() {
      tf.dispose([...shared.values()]);
      shared.clear();
      variants.clear();
    },
  };
}
