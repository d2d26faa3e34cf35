// Training memory per estimator, each in a bench child process of its own: on ONNX Runtime's
// engine, forward mode runs as ort-jvp and backprop as ort-backprop, and each reports its process's
// peak RSS and the part of it above its RSS once the model was loaded.
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import path from 'node:path';
import { trainingMemory, trainsOnOnnxRuntime } from '../../src/main/training_memory.ts';
import { resolveModelDir } from '../../src/worker/models/embedded.ts';

describe('training memory', () => {
  it('measures forward mode and backprop each in its own process, on ONNX Runtime', { timeout: 180_000 }, async () => {
    const m = await trainingMemory({ model: 'embedded', batch: 2, seq: 16, k: 1, onnxRuntime: true, steps: 1 });
    const weightBytes = statSync(path.join(resolveModelDir('embedded'), 'model.safetensors')).size;
    expect([m.forward.mode, m.backprop.mode]).toEqual(['ort-jvp', 'ort-backprop']);
    for (const f of [m.forward, m.backprop]) {
      expect(trainsOnOnnxRuntime(f.engine)).toBe(true);
      expect(f.peakRssBytes).toBeGreaterThan(weightBytes);
      if (process.platform !== 'linux') expect(f.workingRssBytes).toBe(null);
      else {
        // the steps needed something, and less than the whole process
        expect(f.workingRssBytes).toBeGreaterThan(0);
        expect(f.workingRssBytes).toBeLessThan(f.peakRssBytes - weightBytes);
      }
    }
  });

  it('tells a backend line on ONNX Runtime from one without it', () => {
    expect(trainsOnOnnxRuntime('onnxruntime-node 1.30.0 (cpu, 2 threads); wasm for the rest')).toBe(true);
    expect(trainsOnOnnxRuntime('wasm')).toBe(false);
    // an engine that failed to start names onnxruntime in its reason, and trains on TensorFlow.js
    expect(trainsOnOnnxRuntime("ONNX Runtime unavailable (Cannot find module 'onnxruntime-node'); wasm")).toBe(false);
  });
});
