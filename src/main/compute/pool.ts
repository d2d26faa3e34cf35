// A pool of compute workers owned by the peer (or the simulator). Requests go to the first idle
// worker; the network side never waits on tensors, only on these promises.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DataSpec, InitReply, ModelSpec, WorkerReply, WorkerRequest } from '../../shared/worker_protocol.ts';

type Pending = { worker: Worker; resolve: (r: WorkerReply) => void; reject: (e: Error) => void; onProgress?: (r: WorkerReply & { type: 'progress' }) => void };
type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

// From the sources (Node strips the types), or beside the bundled main process in the app.
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../worker/compute_worker.ts', import.meta.url)
  : new URL('./compute_worker.js', import.meta.url);

export class ComputePool {
  readonly size: number;
  #workers: Worker[] = [];
  #idle: Worker[] = [];
  #queue: (() => void)[] = [];
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #failed: Error | null = null;
  #closing = false;

  constructor(size: number) {
    this.size = Math.max(1, size);
    for (let i = 0; i < this.size; i++) {
      // each worker's ONNX Runtime sessions get their share of the cores
      const w = new Worker(WORKER_URL, { workerData: { threads: Math.max(1, Math.floor(availableParallelism() / this.size)) } });
      w.on('message', (m: WorkerReply) => this.#onMessage(m));
      w.on('error', (e) => this.#fail(new Error(`compute worker crashed: ${e.message}`)));
      w.on('exit', (code) => {
        // a worker closed on purpose ends only its own requests; one that dies fails the pool
        if (this.#closing) this.#rejectOf(w, new Error('the compute pool is shutting down'));
        else if (code !== 0) this.#fail(new Error(`compute worker exited with code ${code}`));
      });
      this.#workers.push(w);
      this.#idle.push(w);
    }
  }

  /** Initialise every worker with the same model and data (each derives the same split). */
  async init(model: ModelSpec, data: DataSpec): Promise<InitReply> {
    const replies = await Promise.all(this.#workers.map((w) => this.#send(w, { type: 'init', model, data })));
    return (replies[0] as WorkerReply & { type: 'init' }).result;
  }

  /** Run one request on the next idle worker. */
  async run<T extends WorkerReply['type']>(req: Request, onProgress?: Pending['onProgress']): Promise<WorkerReply & { type: T }> {
    const w = await this.#acquire();
    try {
      return (await this.#send(w, req, onProgress)) as WorkerReply & { type: T };
    } finally {
      this.#idle.push(w);
      this.#queue.shift()?.();
    }
  }

  /**
   * Stop the workers. Each is first asked to let its ONNX Runtime work in flight finish (a thread
   * terminated under a running session takes the whole process down), then terminated; a worker
   * busy with a long request is not waited for beyond that request's current step.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(
      this.#workers.map(async (w) => {
        if (!this.#failed) await this.#send(w, { type: 'close' }).catch(() => {});
        await w.terminate();
      }),
    );
  }

  #acquire(): Promise<Worker> {
    const w = this.#idle.pop();
    if (w) return Promise.resolve(w);
    return new Promise((resolve) => this.#queue.push(() => resolve(this.#idle.pop()!)));
  }

  #send(w: Worker, req: Request, onProgress?: Pending['onProgress']): Promise<WorkerReply> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { worker: w, resolve, reject, onProgress });
      w.postMessage({ ...req, id });
    });
  }

  #onMessage(m: WorkerReply): void {
    const p = this.#pending.get(m.id);
    if (m.type === 'progress') return p?.onProgress?.(m);
    if (!p) {
      // an error no request owns: the worker's own failure (ignored once it is being closed)
      if (m.type === 'error' && !this.#closing) this.#fail(new Error(m.message));
      return;
    }
    this.#pending.delete(m.id);
    if (m.type === 'error') p.reject(new Error(m.message));
    else p.resolve(m);
  }

  #rejectOf(w: Worker, e: Error): void {
    for (const [id, p] of this.#pending)
      if (p.worker === w) {
        this.#pending.delete(id);
        p.reject(e);
      }
  }

  #fail(e: Error): void {
    this.#failed = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}
