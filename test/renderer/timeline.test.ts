// @vitest-environment happy-dom
// The round timeline: entries folded into rounds (attempts, why one did not commit, refused updates,
// warnings, duration and counts), the store's history merged with pushes, the Rounds screen, and the
// Training screen's baseline, reference line and step chart.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import Rounds from '../../src/renderer/screens/Rounds.svelte';
import Training from '../../src/renderer/screens/Training.svelte';
import Memory from '../../src/renderer/screens/Memory.svelte';
import { MemoryStore } from '../../src/renderer/lib/stores/memory.svelte.ts';
import { buildTimeline, duration } from '../../src/renderer/lib/timeline.ts';
import { majorityOf, memberCurves, roundSlots, stepSummary } from '../../src/renderer/lib/training_view.ts';
import { backpropWords } from '../../src/renderer/lib/memory_view.ts';
import { TimelineStore } from '../../src/renderer/lib/stores/timeline.svelte.ts';
import { TrainingStore } from '../../src/renderer/lib/stores/training.svelte.ts';
import { FederationStore } from '../../src/renderer/lib/stores/federation.svelte.ts';
import { DataStore } from '../../src/renderer/lib/stores/data.svelte.ts';
import type { Api } from '../../src/renderer/lib/bridge.ts';
import type { RoundMetric, StatusInfo, StepPoint, TimelineEntry } from '../../src/shared/api.ts';

// happy-dom has no canvas: a stand-in Chart keeps what the component hands it
const charts = vi.hoisted(() => [] as { canvas: unknown; config: { data: { datasets: { label: string; data: unknown[] }[] }; options: { scales: Record<string, { min?: number; max?: number; beginAtZero?: boolean }> } } }[]);
vi.mock('chart.js', () => {
  class Chart {
    static register() {}
    data: unknown;
    options: unknown;
    constructor(canvas: unknown, config: { data: unknown; options: unknown }) {
      this.data = config.data;
      this.options = config.options;
      charts.push({ canvas, config: this as never });
    }
    update() {}
    destroy() {}
  }
  return { Chart, LineController: {}, LineElement: {}, PointElement: {}, LinearScale: {}, Legend: {}, Tooltip: {} };
});

const mounted: ReturnType<typeof mount>[] = [];
afterEach(() => {
  for (const m of mounted.splice(0)) unmount(m);
  document.body.innerHTML = '';
});

function fakeApi(results: Record<string, (...a: unknown[]) => unknown>) {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const api = {
    call: async (m: string, ...args: unknown[]) => {
      const f = results[m];
      if (!f) throw new Error(`${m}: not in this fake`);
      return f(...args);
    },
    on: (e: string, cb: (p: unknown) => void) => {
      let s = listeners.get(e);
      if (!s) listeners.set(e, (s = new Set()));
      s.add(cb);
      return () => s.delete(cb);
    },
  } as unknown as Api;
  const push = (e: string, p: unknown) => {
    for (const cb of listeners.get(e) ?? []) cb(p);
    flushSync();
  };
  return { api, push };
}
const tick = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  flushSync();
};

const status: StatusInfo = {
  version: '0.1.0',
  self: { id: 'a', name: 'imdb' },
  federation: { id: 'f', name: 'Reviews', model: 'embedded', method: 'spry', rounds: 3, minMembers: 2 },
  running: true,
  paused: false,
  role: 'follower',
  backend: 'wasm',
  members: [],
  aggregator: { id: 'b', name: 'yelp', term: 3 },
  round: 3,
  phase: 'training',
  committedRound: 2,
  lastMetrics: null,
  lastError: null,
};

const metric = (round: number, accuracy: number, over: Partial<RoundMetric> = {}): RoundMetric => ({ round, testLoss: 1 - accuracy, accuracy, trainLoss: null, updates: null, participants: null, wallMs: null, at: 100_000 + round, ...over });

/** Round 1 commits under imdb; round 2 fails in term 1, is retried in term 3 under yelp (an election), yelp's update is refused once; round 3 runs. */
const entries: TimelineEntry[] = [
  { kind: 'election', at: 1000, term: 1, aggregator: 'imdb' },
  { kind: 'round-started', at: 2000, round: 1, term: 1, attempt: 1, aggregator: 'imdb', participants: ['imdb', 'yelp'] },
  { kind: 'phase', at: 2100, round: 1, phase: 'training' },
  { kind: 'phase', at: 5000, round: 1, phase: 'collecting' },
  { kind: 'round-committed', at: 7000, round: 1, term: 1, aggregator: 'imdb', participants: 2, updates: 2, members: ['imdb', 'yelp'] },
  { kind: 'round-started', at: 8000, round: 2, term: 1, attempt: 1, aggregator: 'imdb', participants: ['imdb', 'yelp'] },
  { kind: 'update-refused', at: 9000, round: 2, member: 'yelp', reason: 'the update arrived after the deadline' },
  { kind: 'election', at: 10_000, term: 3, aggregator: 'yelp' },
  { kind: 'round-started', at: 11_000, round: 2, term: 3, attempt: 2, aggregator: 'yelp', participants: ['imdb', 'yelp'] },
  { kind: 'round-committed', at: 20_000, round: 2, term: 3, aggregator: 'yelp', participants: null, updates: null, members: [] },
  { kind: 'collapse-warning', at: 21_000, round: 2, reason: 'the adapter predicts one class ("pos") for 97 % of the test examples' },
  { kind: 'round-started', at: 22_000, round: 3, term: 3, attempt: 1, aggregator: 'yelp', participants: ['imdb', 'yelp'] },
];

describe('buildTimeline', () => {
  it('folds entries into rounds: attempts, why an attempt did not commit, refusals, warnings, duration and counts', () => {
    const metrics = [metric(0, 0.5), metric(1, 0.6, { wallMs: 4800 }), metric(2, 0.5, { participants: 2, updates: 1 })];
    const v = buildTimeline(entries, metrics, 30_000);
    expect(v.elections.map((e) => [e.term, e.aggregator])).toEqual([[1, 'imdb'], [3, 'yelp']]);
    expect(v.rounds.map((r) => [r.round, r.state, r.attempts.length])).toEqual([[1, 'committed', 1], [2, 'committed', 2], [3, 'running', 1]]);
    const [r1, r2, r3] = v.rounds;
    expect(r1!.attempts[0]!.phases.map((p) => p.phase)).toEqual(['training', 'collecting']);
    expect(r1!.durationMs).toBe(4800); // the aggregator's own measure of its one attempt
    expect(r1!.committed).toMatchObject({ aggregator: 'imdb', term: 1, updates: 2, participants: 2, members: ['imdb', 'yelp'] });
    expect(r2!.attempts[0]!.failed).toBe('a new aggregator was elected (term 3)');
    expect(r2!.attempts[1]!.failed).toBe(null);
    expect(r2!.durationMs).toBe(20_000 - 8000); // from the first start to the commit
    expect(r2!.committed).toMatchObject({ aggregator: 'yelp', term: 3, updates: 1, participants: 2 }); // counts from the metric
    expect(r2!.refused).toEqual([{ member: 'yelp', reason: 'the update arrived after the deadline', at: 9000 }]);
    expect(r2!.warnings).toEqual(['the adapter predicts one class ("pos") for 97 % of the test examples']);
    expect(r3!.durationMs).toBe(30_000 - 22_000);
    expect(v.rounds.some((r) => r.round === 0)).toBe(false);
  });

  it('takes an aggregator’s reason for a failed attempt', () => {
    const v = buildTimeline(
      [
        { kind: 'round-started', at: 1, round: 1, term: 1, attempt: 1, aggregator: 'a', participants: [] },
        { kind: 'round-failed', at: 2, round: 1, term: 1, reason: 'no update arrived before the deadline' },
        { kind: 'round-started', at: 3, round: 1, term: 1, attempt: 2, aggregator: 'a', participants: [] },
      ],
      [],
      4,
    );
    expect(v.rounds[0]!.state).toBe('retrying');
    expect(v.rounds[0]!.attempts.map((a) => a.failed)).toEqual(['no update arrived before the deadline', null]);
  });

  it('folds a second report of the same attempt into it (the aggregator knows its participants)', () => {
    const v = buildTimeline(
      [
        { kind: 'round-started', at: 1, round: 2, term: 3, attempt: 2, aggregator: 'imdb', participants: [] },
        { kind: 'round-started', at: 2, round: 2, term: 3, attempt: 2, aggregator: 'imdb', participants: ['imdb', 'yelp'] },
      ],
      [],
      3,
    );
    expect(v.rounds[0]!.attempts).toHaveLength(1);
    expect(v.rounds[0]!.attempts[0]!.participants).toEqual(['imdb', 'yelp']);
  });

  it('writes durations as people read them', () => {
    expect([duration(null), duration(1234), duration(65_000)]).toEqual(['–', '1.2 s', '1 min 5 s']);
  });
});

describe('TimelineStore', () => {
  it('takes the peer’s history and keeps entries pushed after it', async () => {
    const { api, push } = fakeApi({ timeline: () => entries.slice(0, 3) });
    const t = new TimelineStore(api);
    push('timeline', entries[1]); // already in the history
    push('timeline', entries[3]); // newer than the history
    await t.refresh();
    expect(t.entries).toEqual(entries.slice(0, 4));
    push('timeline', entries[4]);
    expect(t.entries).toHaveLength(5);
    t.dispose();
  });
});

describe('the Rounds screen', () => {
  it('shows each round with its attempts, the election that interrupted one, a refused update and a warning', () => {
    const { api } = fakeApi({});
    const timeline = new TimelineStore(api);
    timeline.entries = entries;
    const training = new TrainingStore(api);
    training.rounds = [metric(0, 0.5), metric(1, 0.6, { wallMs: 4800 }), metric(2, 0.5)];
    const federation = new FederationStore(api);
    federation.status = status;
    mounted.push(mount(Rounds, { target: document.body, props: { timeline, training, federation } }));
    expect(document.querySelector('[data-testid="elections-count"]')?.textContent).toBe('2');
    expect(document.querySelector('[data-testid="retries-count"]')?.textContent).toBe('1');
    const rounds = [...document.querySelectorAll('[data-testid="rounds"] > li')];
    expect(rounds.map((r) => r.getAttribute('data-round'))).toEqual(['3', '2', '1']);
    const r2 = rounds[1]!.textContent ?? '';
    expect(r2).toContain('aggregated by yelp, term 3');
    expect(r2).toContain('Attempt 1');
    expect(r2).toContain('did not commit: a new aggregator was elected (term 3)');
    expect(r2).toContain('Update of yelp refused: the update arrived after the deadline');
    expect(r2).toContain('the adapter predicts one class ("pos") for 97 % of the test examples');
    const r1 = rounds[2]!.textContent ?? '';
    expect(r1).toContain('2 of 2 updates (imdb, yelp)');
    expect(r1).toContain('4.8 s');
    expect(r1).toMatch(/training \+0\.1 s → waiting for the updates \+3\.0 s/);
    expect(rounds[0]!.querySelector('.badge')?.textContent).toBe('running');
    expect([...document.querySelectorAll('[data-testid="elections"] li')].map((l) => l.textContent?.replace(/^\S+ /, ''))).toEqual(['term 3: yelp aggregates', 'term 1: imdb aggregates']);
  });
});

describe('the Training screen', () => {
  const steps: StepPoint[] = [
    ...[1, 2].map((s) => ({ round: 1, attempt: 1, step: s, steps: 2, loss: 0.7, at: s })),
    { round: 2, attempt: 1, step: 1, steps: 2, loss: 5, at: 3 },
    ...[1, 2].map((s) => ({ round: 2, attempt: 2, step: s, steps: 2, loss: 0.6, at: 3 + s })),
  ];

  it('draws the baseline at round 0, the one-label reference, and each round’s last attempt only', async () => {
    const summary = { source: 'sentiment', kind: 'builtin', size: null, examples: 10, labels: ['neg', 'pos'], balance: [{ label: 'neg', count: 6, fraction: 0.6 }, { label: 'pos', count: 4, fraction: 0.4 }], preview: [] };
    const { api } = fakeApi({ dataSummary: () => summary });
    const training = new TrainingStore(api);
    training.rounds = [metric(0, 0.5), metric(1, 0.62), metric(2, 0.7)];
    training.steps = steps;
    const timeline = new TimelineStore(api);
    timeline.entries = entries;
    const federation = new FederationStore(api);
    federation.status = status;
    mounted.push(mount(Training, { target: document.body, props: { federation, training, data: new DataStore(api), timeline } }));
    await tick();
    const chart = (id: string) => document.querySelector(`[data-testid="${id}"]`)!;
    expect(chart('chart-accuracy').getAttribute('data-points')).toBe('3'); // rounds 0, 1, 2; the reference line is not data
    expect(chart('chart-accuracy').textContent).toContain('round 2: 70.0 %, best 70.0 %, before training 50.0 %; always answering “neg” scores 60.0 %');
    expect(chart('chart-loss').textContent).toContain('before training 0.5000');
    expect(chart('chart-steps').getAttribute('data-points')).toBe('4');
    expect(chart('chart-steps').textContent).toContain('4 steps in 2 rounds (2 per round)');
    expect(chart('chart-steps').textContent).toContain('round 2 was retried: only the last attempt is drawn');
    // the accuracy axis spans 0–100 %, so noise does not look like progress
    const acc = charts.find((c) => c.config.data.datasets[0]?.label.startsWith('generalized accuracy'))!;
    expect(acc.config.options.scales.y).toMatchObject({ min: 0, max: 1 });
    expect(acc.config.data.datasets.map((d) => d.label)).toEqual(['generalized accuracy (imdb)', 'always “neg”']);
    const strip = [...document.querySelectorAll('[data-testid="round-strip"] li')];
    expect(strip.map((li) => li.className.split(' ').filter((c) => c !== '' && !c.startsWith('svelte-')).sort().join(' '))).toEqual(['committed', 'committed retried', 'current']);
  });

  it('draws the other members’ own evaluations where their updates reported them', async () => {
    const { api } = fakeApi({ dataSummary: () => ({ source: 's', kind: 'builtin', size: null, examples: 1, labels: [], balance: [], preview: [] }) });
    const training = new TrainingStore(api);
    training.rounds = [metric(0, 0.5), metric(1, 0.6)];
    const timeline = new TimelineStore(api);
    const items = (round: number) => [
      { member: 'imdb', round, testLoss: 0.5, accuracy: 0.6 },
      { member: 'yelp', round, testLoss: 0.4, accuracy: 0.7 },
    ];
    timeline.entries = [
      { kind: 'evaluations', at: 1, round: 1, items: items(0) },
      { kind: 'evaluations', at: 2, round: 2, items: items(1) },
    ];
    expect(memberCurves(timeline.entries, 'imdb')).toEqual([{ member: 'yelp', points: [{ round: 0, testLoss: 0.4, accuracy: 0.7 }, { round: 1, testLoss: 0.4, accuracy: 0.7 }] }]);
    const federation = new FederationStore(api);
    federation.status = { ...status, self: { id: 'a', name: 'imdb' } };
    charts.length = 0;
    mounted.push(mount(Training, { target: document.body, props: { federation, training, data: new DataStore(api), timeline } }));
    await tick();
    const labels = charts.flatMap((c) => c.config.data.datasets.map((d) => d.label));
    expect(labels).toContain('test loss (yelp)');
    expect(labels).toContain('yelp');
    expect(document.querySelector('[data-testid="chart-accuracy"]')?.getAttribute('data-points')).toBe('4'); // imdb 0, 1 and yelp 0, 1
  });

  it('puts its figures in words', () => {
    expect(majorityOf(null)).toBe(null);
    expect(roundSlots({ ...status, federation: null }, [])).toEqual([]);
    expect(stepSummary([], [])).toBe('');
    expect(stepSummary(steps.slice(0, 2), [])).toBe('2 steps in 1 round (2 per round), last loss 0.7000');
  });
});

describe('the Memory screen', () => {
  it('shows the process RSS and its peak, starts its axes at zero, and explains the training-memory figure', () => {
    const { api } = fakeApi({});
    const memory = new MemoryStore(api);
    const fig = { medianStepMs: 10 };
    memory.backprop = { state: 'measured', kind: 'measured', model: 'embedded', batch: 4, seq: 32, engine: 'onnxruntime-node 1.30.0 (cpu, 2 threads)', backprop: { ...fig, peakRssBytes: 250 * 2 ** 20, workingRssBytes: 8 * 2 ** 20 }, forward: { ...fig, peakRssBytes: 240 * 2 ** 20, workingRssBytes: 2 * 2 ** 20 } };
    for (const [i, rss] of [300, 340, 320].entries()) memory.add({ at: i * 1000, round: 1, attempt: 1, step: i + 1, rss: rss * 2 ** 20, peakRss: 350 * 2 ** 20 });
    charts.length = 0;
    mounted.push(mount(Memory, { target: document.body, props: { memory } }));
    flushSync();
    const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? '';
    expect(text('rss-now')).toBe('320.0 MB');
    expect(text('rss-peak')).toBe('350.0 MB');
    expect(document.body.textContent).toContain('ONNX Runtime\'s training buffers included');
    const live = charts.find((c) => c.config.data.datasets[0]?.label === 'process RSS (MB)')!;
    expect(live.config.options.scales.y!.beginAtZero).toBe(true);
    expect(live.config.data.datasets.map((d) => d.label)).toEqual(['process RSS (MB)', 'peak RSS so far (MB)']);
    const steps = charts.find((c) => c.config.data.datasets[0]?.label === 'RSS at the step’s end (MB)')!;
    expect(steps.config.options.scales.y!.beginAtZero).toBe(true);
    expect(steps.config.data.datasets[0]!.data).toHaveLength(3);
    expect(text('chart-memory-steps')).toContain('3 steps, highest 340.0 MB');
    expect(text('backprop')).toContain('backprop 8.00 MB · forward mode 2.00 MB · 4.0×');
    expect(text('backprop-explained')).toContain('Backprop keeps every layer');
  });
});

describe('the training-memory card in words', () => {
  it('says what working and peak memory are, from the bench’s figures', () => {
    const fig = { medianStepMs: 100 };
    const w = backpropWords({
      state: 'measured', kind: 'measured', model: 'embedded', batch: 8, seq: 48, engine: 'onnxruntime-node 1.30.0 (cpu, 2 threads)',
      backprop: { ...fig, peakRssBytes: 228.2 * 2 ** 20, workingRssBytes: 46.8 * 2 ** 20 },
      forward: { ...fig, peakRssBytes: 222.5 * 2 ** 20, workingRssBytes: 41.8 * 2 ** 20 },
    });
    expect(w[0]).toContain('less that process\'s RSS once the model was loaded');
    expect(w[1]).toContain('46.8 MB (its process peaked at 228.2 MB)');
    expect(w[1]).toContain('41.8 MB (peak 222.5 MB)');
    expect(w[2]).toContain('on onnxruntime-node 1.30.0 (cpu, 2 threads), one batch of 8 × 48 tokens');
    expect(backpropWords(null)).toEqual([]);
  });
});
