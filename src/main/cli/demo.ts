// `fedforward demo`: the main job on the embedded default. Three organisations, each holding its own
// mail (a third of the SpamAssassin corpus's subject lines, in a file of its own), form a real libp2p
// federation on loopback (TCP, Noise, a private network from the invite), elect an aggregator and
// finetune the embedded model into a spam filter with Spry; progress, a summary, the PEFT adapter.
import type { Command } from 'commander';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { backendOption, nonNegativeInt, positiveInt } from './options.ts';
import { Peer } from '../federation/peer.ts';
import { describeCollapse } from '../../shared/collapse.ts';
import { exportPeftAdapter } from '../export/peft.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';
import { ORGS, PER_ORG, TRAIN_FRACTION, writeMailFiles } from '../demo_data.ts';

const MB = 1024 * 1024;
const pct = (a: number | null) => (a === null ? 'n/a' : `${(100 * a).toFixed(1)}%`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('three organisations, each with its own mail, federate over libp2p on loopback and finetune the embedded model into a spam filter with Spry')
    .option('--rounds <n>', 'rounds', positiveInt, 15)
    .option('--model <dir>', 'model directory, or "embedded"', 'embedded')
    .option('--out <dir>', 'where the peers keep their data directories and the adapter is exported', 'fedforward-demo')
    .option('--max-local-steps <n>', 'cap on local steps per round per organisation (0 = a full epoch, as in the paper)', nonNegativeInt, 0)
    .option('--json', 'print the summary as JSON')
    .addOption(backendOption())
    .action(async (o) => {
      const log = (s: string) => !o.json && console.log(s);
      const out = path.resolve(o.out);
      await rm(path.join(out, 'peers'), { recursive: true, force: true });
      const files = await writeMailFiles(path.join(out, 'data'));
      const data = (i: number) => ({ source: files[i], split: { kind: 'local' as const, client: ORGS[i] }, seed: 0, trainFraction: TRAIN_FRACTION });
      const peers = await Promise.all(ORGS.map((org) => Peer.open({ dataDir: path.join(out, 'peers', org), listen: ['/ip4/127.0.0.1/tcp/0'] })));
      const [first, ...others] = peers;
      // who led each term (Raft: at most one leader a term), as the peers announce it
      const leaders = new Map<number, string>();
      const warnings: string[] = [];
      for (const [i, p] of peers.entries()) {
        p.on('status', (s) => {
          if (s.role === 'leader') leaders.set(s.term, s.name);
        });
        p.on('collapse', (c) => {
          const line = `${ORGS[i]}: ${describeCollapse(c)}`;
          warnings.push(line);
          log(`warning: ${line}`);
        });
      }
      try {
        log(`FedForward demo: 3 organisations (${ORGS.join(', ')}) each keep their own mail and train one spam filter (an adapter on the embedded model) with Spry.`);
        log(`each holds ${PER_ORG} subject lines from the SpamAssassin corpus, spam and ham, in ${path.relative(process.cwd(), path.dirname(files[0])) || '.'}/<organisation>.jsonl; ${Math.round(PER_ORG * (1 - TRAIN_FRACTION))} of them are held out to test on`);
        await first.create({
          name: 'FedForward demo',
          peerName: ORGS[0],
          model: { model: o.model, backend: o.backend, maxLength: 48 },
          data: data(0),
          hp: { lr: 1e-4, maxLocalSteps: o.maxLocalSteps, batchSize: 8, maxLength: 48 },
          rounds: o.rounds,
          minMembers: 3,
          seed: 0,
        });
        await first.start();
        // Bound to the two newcomers' peer ids (which they would send the inviter out of band).
        const code = await first.invite({ for: others.map((p) => p.peerId), expiresMs: 3_600_000 });
        log(`${ORGS[0]} created the federation and an invite for the other two: ${code.slice(0, 24)}…`);
        for (const [i, p] of others.entries()) {
          await p.join(code, ORGS[i + 1], data(i + 1));
          log(`${ORGS[i + 1]} joined with the code`);
        }
        const before = await Promise.all(peers.map((p) => p.evaluateCommitted()));
        log(`accuracy of the untrained adapter: ${before.map((m) => `${m.peer} ${pct(m.accuracy)}`).join(', ')}`);

        // A round is reported with the term it was committed in (from the commit record) and the
        // peer that led that term, not with whoever leads when the loop looks: by then an election
        // may be under way (no leader at all) or another peer may lead.
        const commits: { round: number; term: number | null; aggregator: string | null; seconds: number }[] = [];
        const t0 = Date.now();
        while (commits.length < o.rounds) {
          const committed = Math.min(...peers.map((p) => p.status().committedRound));
          const records = committed > commits.length ? await first.dir.listCheckpoints() : [];
          while (commits.length < committed) {
            const round = commits.length + 1;
            const term = records.find((c) => c.round === round)?.term ?? null;
            const c = { round, term, aggregator: term === null ? null : (leaders.get(term) ?? null), seconds: (Date.now() - t0) / 1000 };
            commits.push(c);
            log(`round ${round}/${o.rounds} committed by all 3 (aggregator ${c.aggregator ?? '?'}, term ${term ?? '?'}), ${c.seconds.toFixed(0)} s`);
          }
          await sleep(200);
        }
        const after = await Promise.all(peers.map((p) => p.evaluateCommitted()));
        const { globals, init, round } = first.committedAdapter();
        const adapterDir = path.join(out, 'adapter');
        await exportPeftAdapter(adapterDir, { family: init.family, task: 'classification', ...init.lora, baseModel: resolveModelDir(o.model), labels: init.labels }, init.specs, globals);
        const summary = {
          rounds: round,
          commits,
          warnings,
          organisations: ORGS.map((org, i) => {
            const sent = [...peers[i].traffic().values()].reduce((s, t) => s + t.sent, 0);
            return {
              name: org,
              accuracyBefore: before[i].accuracy,
              accuracyAfter: after[i].accuracy,
              testLossBefore: before[i].testLoss,
              testLossAfter: after[i].testLoss,
              bytesSent: sent,
            };
          }),
          // the three demo peers share one process, so RSS is theirs together
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
          seconds: (Date.now() - t0) / 1000,
          adapter: adapterDir,
        };
        if (o.json) return console.log(JSON.stringify(summary, null, 2));
        log('\norganisation  accuracy before → after (gain)    test loss before → after    sent');
        for (const s of summary.organisations) {
          const gain = s.accuracyBefore === null || s.accuracyAfter === null ? 'n/a' : `${(100 * (s.accuracyAfter - s.accuracyBefore)).toFixed(1)} points`;
          log(
            `${s.name.padEnd(12)}  ${pct(s.accuracyBefore).padStart(6)} → ${pct(s.accuracyAfter).padEnd(6)} (${gain})`.padEnd(47) +
              `${s.testLossBefore.toFixed(4)} → ${s.testLossAfter.toFixed(4)}         ${(s.bytesSent / 1024).toFixed(0)} KiB`,
          );
        }
        // training steps run on ONNX Runtime, whose buffers only the process RSS counts
        log(`peak RSS of the process running all three peers (ONNX Runtime's training memory included): ${(summary.peakRssBytes / MB).toFixed(0)} MB`);
        log(`${summary.rounds} rounds in ${summary.seconds.toFixed(0)} s; adapter (PEFT LoRA): ${adapterDir}`);
      } finally {
        await Promise.all(peers.map((p) => p.stop()));
      }
    });
}
