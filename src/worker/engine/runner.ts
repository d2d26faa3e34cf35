// One model on ONNX Runtime: its graphs (inference, forward-mode step, reverse-mode step) traced
// on first use, compiled into cached sessions, and run on host batches. The forward-mode step's
// inputs are the batch, the adapter values and K tangents for the perturbed tensors only; its
// outputs are the loss and the K directional derivatives.
import { directions, combineDirections } from '../../shared/spry/directions.ts';
import type { Seed } from '../../shared/spry/rng.ts';
import type { IrModel, HostBatch } from './model.ts';
import { batchFeeds, dropoutFeeds } from './model.ts';
import { jvpGraph, tangentName } from './jvp.ts';
import { grad } from './vjp.ts';
import { WeightFile, toOnnx } from './onnx.ts';
import { ort, run, session } from './session.ts';

export type HostValues = Map<string, Float32Array>;

export interface ForwardResult {
  loss: number;
  /** ∇f·v_k for each of the K directions */
  jvp: number[];
}

export class Runner {
  readonly model: IrModel;
  /** identifies the base weights (a model directory, or a random checkpoint's shape and seed) */
  readonly key: string;
  private readonly causal: boolean;
  /** the frozen weights of every session of this model, in one file */
  private readonly weights = new WeightFile();
  constructor(model: IrModel, key: string) {
    this.model = model;
    this.key = key;
    this.causal = model.family !== 'bert';
  }

  /**
   * Moves the model's frozen weights into the weight file and frees JavaScript's copies (see
   * WeightFile.release): the process then holds them once, as ONNX Runtime does. Only for a model
   * whose weights nothing else in this thread reads (the benchmark's random checkpoints).
   */
  releaseHostWeights(): void {
    this.weights.release([...this.model.trace(false).graph.consts.values()].map((c) => c.data));
  }

  private sessionKey(mode: string, dropout: boolean, names: string[] = []): string {
    const { task, lora } = this.model;
    return JSON.stringify([this.key, task, lora, this.model.trainable.map((s) => s.name), mode, dropout, names]);
  }

  private feeds(s: ort.InferenceSession, batch: HostBatch, values: HostValues, dropoutSeed: number | null, extra: Record<string, { data: Float32Array; shape: number[] }> = {}) {
    const host: Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> = { ...batchFeeds(this.model, batch, this.causal), ...this.model.hostFeeds?.(batch), ...extra };
    for (const spec of this.model.trainable) {
      const v = values.get(spec.name);
      if (!v) throw new Error(`the adapter lacks tensor "${spec.name}"`);
      host[spec.name] = { data: v, shape: spec.shape };
    }
    const feeds: Record<string, ort.Tensor> = {};
    const dropNames = s.inputNames.filter((n) => n.startsWith('dropout:'));
    if (dropNames.length > 0)
      Object.assign(host, dropoutFeeds(dropNames.map((name) => ({ name, features: this.features(name) })), batch.b, batch.t, this.model.lora.dropout, dropoutSeed!));
    for (const name of s.inputNames) {
      const f = host[name];
      if (!f) throw new Error(`no value for graph input "${name}"`);
      feeds[name] = new ort.Tensor(f.data instanceof BigInt64Array ? 'int64' : 'float32', f.data, f.shape);
    }
    return feeds;
  }

  /** input features of a LoRA site's dropout mask: the in size of its A */
  private features(dropName: string): number {
    const spec = this.model.trainable.find((s) => s.name === `${dropName.slice('dropout:'.length)}.lora_A.weight`)!;
    return spec.shape[1];
  }

  private dropout(seed: number | null) {
    return seed !== null && this.model.lora.dropout > 0;
  }

  /** Logits of a batch ([B, T, V] or [B, C], flattened), no dropout. */
  async logits(batch: HostBatch, values: HostValues): Promise<Float32Array> {
    const s = await session(this.sessionKey('logits', false), () => {
      const t = this.model.trace(false);
      return toOnnx(t.graph, { logits: t.logits });
    }, this.weights);
    const out = await run(s, this.feeds(s, batch, values, null));
    return out.logits.data as Float32Array;
  }

  /** The loss and the logits of a batch from one inference pass, no dropout (evaluation). */
  async lossAndLogits(batch: HostBatch, values: HostValues): Promise<{ loss: number; logits: Float32Array }> {
    const s = await session(this.sessionKey('loss+logits', false), () => {
      const t = this.model.trace(false);
      return toOnnx(t.graph, { loss: t.loss, logits: t.logits });
    }, this.weights);
    const out = await run(s, this.feeds(s, batch, values, null));
    return { loss: (out.loss.data as Float32Array)[0], logits: out.logits.data as Float32Array };
  }

  /** The loss of a batch (dropout when a seed is given and the adapter has a rate). */
  async loss(batch: HostBatch, values: HostValues, dropoutSeed: number | null): Promise<number> {
    const drop = this.dropout(dropoutSeed);
    const s = await session(this.sessionKey('loss', drop), () => {
      const t = this.model.trace(drop);
      return toOnnx(t.graph, { loss: t.loss });
    }, this.weights);
    const out = await run(s, this.feeds(s, batch, values, dropoutSeed));
    return (out.loss.data as Float32Array)[0];
  }

  /**
   * The trainable tensors a jvp graph carries tangents for, given the requested ones: everything
   * from a start point at or before the first requested tensor (module order) to the end, the
   * others fed zero tangents. Tangents must run from the first perturbed layer to the loss anyway;
   * the extra LoRA tangents are rank-r products. The start points are 0, ¼, ½ and ¾ of the LoRA
   * tensors and the head, so a worker keeps at most five jvp (and vjp) graphs whatever the assignments.
   */
  private tangentSet(requested: string[]): string[] {
    const specs = this.model.trainable;
    const first = Math.min(...requested.map((n) => {
      const i = specs.findIndex((s) => s.name === n);
      if (i < 0) throw new Error(`"${n}" is not a trainable tensor of this model`);
      return i;
    }));
    const lora = specs.filter((s) => s.name.includes('.lora_')).length;
    const starts = [0, 1, 2, 3].map((q) => 2 * Math.floor((q * lora) / 8)).concat(lora);
    const start = Math.max(...starts.filter((x) => x <= first));
    return specs.slice(start).map((s) => s.name);
  }

  private jvpSession(names: string[], drop: boolean): Promise<ort.InferenceSession> {
    const stack = process.env.FEDFORWARD_STACK_MATMULS === '1';
    return session(this.sessionKey(stack ? 'jvp-stacked' : 'jvp', drop, names), () => {
      const t = this.model.trace(drop);
      const j = jvpGraph(t.graph, [t.loss], names, { stack });
      return toOnnx(j.graph, { loss: j.outs[0], jvp: j.tangents[0]! }, names.map(tangentName));
    }, this.weights);
  }

  /** Builds the session a jvp step on `requested` runs, and runs nothing (the benchmark's weights-only baseline). */
  async prepareJvp(requested: string[], dropoutSeed: number | null): Promise<void> {
    await this.jvpSession(this.tangentSet(requested), this.dropout(dropoutSeed));
  }

  /** The loss and its K directional derivatives along `dirs` ([K, ...shape] per perturbed tensor). */
  async jvp(batch: HostBatch, values: HostValues, dirs: Map<string, Float32Array>, k: number, dropoutSeed: number | null): Promise<ForwardResult> {
    if (dirs.size === 0 || k < 1) throw new Error('a forward gradient needs at least one perturbed tensor and K >= 1');
    const names = this.tangentSet([...dirs.keys()]);
    const s = await this.jvpSession(names, this.dropout(dropoutSeed));
    const extra: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const n of names) {
      const shape = this.model.trainable.find((x) => x.name === n)!.shape;
      extra[tangentName(n)] = { data: dirs.get(n) ?? new Float32Array(k * shape.reduce((a, b) => a * b, 1)), shape: [k, ...shape] };
    }
    const out = await run(s, this.feeds(s, batch, values, dropoutSeed, extra));
    return { loss: (out.loss.data as Float32Array)[0], jvp: Array.from(out.jvp.data as Float32Array) };
  }

  /**
   * Spry's forward gradient on `names`: K directions from the shared Philox rule for `seed`,
   * g = (1/K) Σ_k (∇f·v_k) v_k.
   */
  async forwardGradient(batch: HostBatch, values: HostValues, names: string[], k: number, seed: Seed, dropoutSeed: number | null): Promise<ForwardResult & { grads: HostValues }> {
    const dirs = new Map(names.map((n) => [n, directions(seed, this.model.trainable, n, k)]));
    const r = await this.jvp(batch, values, dirs, k, dropoutSeed);
    return { ...r, grads: new Map(names.map((n) => [n, combineDirections(r.jvp, dirs.get(n)!)])) };
  }

  /** The loss and its exact gradient on `names`, by reverse mode (the graph's transpose rules). */
  async backprop(batch: HostBatch, values: HostValues, names: string[], dropoutSeed: number | null): Promise<{ loss: number; grads: HostValues }> {
    // the same few graphs as forward mode: the backward pass reaches the first tensor anyway
    const sorted = this.tangentSet(names);
    const drop = this.dropout(dropoutSeed);
    const s = await session(this.sessionKey('vjp', drop, sorted), () => {
      const t = this.model.trace(drop);
      const gs = grad(t.loss, sorted.map((n) => t.adapter.get(n)!));
      return toOnnx(t.graph, { loss: t.loss, ...Object.fromEntries(sorted.map((n, i) => [`grad:${n}`, gs[i]])) });
    }, this.weights);
    const out = await run(s, this.feeds(s, batch, values, dropoutSeed));
    return { loss: (out.loss.data as Float32Array)[0], grads: new Map(names.map((n) => [n, out[`grad:${n}`].data as Float32Array])) };
  }
}
