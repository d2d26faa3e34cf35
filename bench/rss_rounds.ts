// Does a peer's process memory grow round after round (the Memory screen's RSS)? Two peers in one
// process on the embedded model, N rounds (default 20); prints per committed round, as CSV: process
// RSS, V8 heap, external and array-buffer memory, and the process's RSS and peak RSS as the compute
// worker last reported them (the same process: a check that the two agree).
// Run: node bench/rss_rounds.ts [rounds]
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Peer } from '../src/main/federation/peer.ts';

const ROUNDS = Number(process.argv[2] ?? 20);
const dirs: string[] = [];
const dir = async (t: string) => {
  const d = await mkdtemp(path.join(os.tmpdir(), `ff-rss-${t}-`));
  dirs.push(d);
  return d;
};
const a = await Peer.open({ dataDir: await dir('a'), listen: ['/ip4/127.0.0.1/tcp/0'] });
await a.create({
  name: 'rss', peerName: 'imdb', model: { model: 'embedded', lora: { r: 4, alpha: 8, dropout: 0 }, maxLength: 48 },
  data: { source: 'sentiment', split: { kind: 'local', client: 'imdb', domain: 'imdb' }, seed: 0, limit: 200 },
  hp: { maxLocalSteps: 10, batchSize: 8, maxLength: 48 }, rounds: ROUNDS, minMembers: 2, roundDeadlineMs: 300_000,
});
await a.start();
while (a.status().role !== 'leader') await new Promise((r) => setTimeout(r, 100));
const b = await Peer.open({ dataDir: await dir('b'), listen: ['/ip4/127.0.0.1/tcp/0'] });
const code = await a.invite({ uses: 1, expiresMs: 600_000, for: [b.peerId] });
await b.join(code, 'yelp', { source: 'sentiment', split: { kind: 'local', client: 'yelp', domain: 'yelp' }, seed: 1, limit: 200 });
let lastWorker = { rss: 0, peakRss: 0 };
a.on('step', (e) => (lastWorker = e.memory));
const MB = (n: number) => (n / 2 ** 20).toFixed(1);
const t0 = Date.now();
let seen = 0;
console.log('round,seconds,rssMB,heapUsedMB,externalMB,arrayBuffersMB,workerRssMB,workerPeakRssMB');
while (seen < ROUNDS) {
  await new Promise((r) => setTimeout(r, 200));
  const c = a.status().committedRound;
  if (c > seen) {
    seen = c;
    const m = process.memoryUsage();
    console.log([c, ((Date.now() - t0) / 1000).toFixed(0), MB(m.rss), MB(m.heapUsed), MB(m.external), MB(m.arrayBuffers), MB(lastWorker.rss), MB(lastWorker.peakRss)].join(','));
  }
}
await b.stop();
await a.stop();
await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
process.exit(0);
