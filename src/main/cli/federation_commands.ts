// `fedforward create | invite | join CODE | start | status`: the federation peer, headless.
//   create   a new federation (this peer its first member); settings signed by this peer's key
//   invite   an invite code for a newcomer (uses and expiry tracked in the data directory)
//   join     join with a code and this peer's own data, then run
//   start    run this peer of its federation (until Ctrl-C)
//   status   what the data directory says: federation, members, committed rounds, last metrics
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { backendOption, nonNegativeNumber, positiveInt } from './options.ts';
import { hyperParamsOf, loraOf, trainingOptions } from './simulate.ts';
import { Peer } from '../federation/peer.ts';
import { openDataDir } from '../storage/data_dir.ts';

const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4001';

const nat = (v: string) => (v === '0' ? 0 : positiveInt(v));
const positive = (v: string) => {
  const n = nonNegativeNumber(v);
  if (n === 0) throw new InvalidArgumentError('expected a number > 0');
  return n;
};
const multiaddrList = (v: string, prev: string[] | undefined) => {
  if (!v.startsWith('/')) throw new InvalidArgumentError(`"${v}" is not a multiaddr (e.g. ${DEFAULT_LISTEN})`);
  return [...(prev ?? []), v];
};

function dataOptions(cmd: Command): Command {
  return cmd
    .option('--task <name|file>', "this peer's data: a built-in task (sentiment, brown-genre, brown-lm) or a .jsonl/.csv file", 'sentiment')
    .option('--domain <name>', 'only this natural domain of a built-in task (e.g. imdb, yelp, amazon)')
    .option('--limit <n>', 'at most this many local examples (0 = all)', nat, 0)
    .option('--data-seed <n>', 'seed of the local train/test split', nat, 0);
}

function dataSpecOf(o: Record<string, unknown>, peerName: string) {
  return {
    source: String(o.task),
    split: { kind: 'local' as const, client: peerName, ...(o.domain ? { domain: String(o.domain) } : {}) },
    seed: o.dataSeed as number,
    limit: o.limit as number,
  };
}

function addressOptions(cmd: Command): Command {
  return cmd
    .option('--listen <multiaddr>', `listen address, repeatable (default ${DEFAULT_LISTEN})`, multiaddrList)
    .option('--announce <multiaddr>', 'public address to give out instead (behind a NAT), repeatable', multiaddrList);
}

function logLine(line: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** Run until SIGINT/SIGTERM, then stop the peer. */
async function runUntilSignal(peer: Peer): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
  logLine('stopping');
  await peer.stop();
}

export function federationCommands(program: Command): void {
  const create = program
    .command('create')
    .description('create a federation with this peer as its first member (then: fedforward invite, fedforward start)')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .requiredOption('--name <name>', 'federation name, shown to those you invite')
    .requiredOption('--peer-name <name>', "this peer's name in the federation")
    .option('--model <dir>', 'model directory every peer has, or "embedded"', 'embedded')
    .option('--rounds <n>', 'rounds to run', positiveInt, 10)
    .option('--min-members <n>', 'members connected before the first round starts', positiveInt, 2)
    .option('--seed <n>', 'federation seed (assignment, perturbations, initial adapter)', nat, 0)
    .option('--deadline <s>', 'seconds the aggregator waits for updates each round', positive, 60)
    .option('--json', 'print the settings as JSON')
    .addOption(backendOption());
  dataOptions(addressOptions(trainingOptions(create))).action(async (o) => {
    const hp = hyperParamsOf(o);
    const peer = await Peer.open({ dataDir: o.dataDir, listen: o.listen ?? [DEFAULT_LISTEN], announce: o.announce });
    const settings = await peer.create({
      name: o.name,
      peerName: o.peerName,
      model: { model: o.model, lora: loraOf(o), backend: o.backend, maxLength: hp.maxLength, initSeed: o.seed },
      data: dataSpecOf(o, o.peerName),
      hp,
      rounds: o.rounds,
      minMembers: o.minMembers,
      seed: o.seed,
      roundDeadlineMs: Math.round(o.deadline * 1000),
    });
    if (o.json) console.log(JSON.stringify({ peerId: peer.peerId, settings }, null, 2));
    else console.log(`created federation "${settings.federationName}" (${settings.federationId}); peer ${peer.peerId}`);
  });

  program
    .command('invite')
    .description('print an invite code for a newcomer')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .option('--hours <h>', 'hours until the code expires', positive, 24)
    .option('--uses <n>', 'how many peers may join with it', positiveInt, 1)
    .option('--json', 'print {code, expiresAt} as JSON')
    .action(async (o) => {
      const peer = await Peer.open({ dataDir: o.dataDir });
      const expiresMs = Math.round(o.hours * 3600 * 1000);
      const code = await peer.invite({ expiresMs, uses: o.uses });
      if (o.json) console.log(JSON.stringify({ code, expiresAt: Date.now() + expiresMs, uses: o.uses }));
      else console.log(code);
    });

  program
    .command('revoke')
    .description('revoke an invite code issued by this peer: it can no longer be used to join')
    .argument('<code>', 'the invite code')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .action(async (code: string, o) => {
      const peer = await Peer.open({ dataDir: o.dataDir });
      await peer.revoke(code.trim());
      console.log('invite revoked');
    });

  const join = program
    .command('join')
    .description('join a federation with an invite code and this peer\'s own data, then run until Ctrl-C')
    .argument('<code>', 'the invite code (ff1-…)')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .requiredOption('--peer-name <name>', "this peer's name in the federation");
  dataOptions(addressOptions(join)).action(async (code: string, o) => {
    const peer = await Peer.open({ dataDir: o.dataDir, listen: o.listen ?? [DEFAULT_LISTEN], announce: o.announce, log: logLine });
    await peer.join(code, o.peerName, dataSpecOf(o, o.peerName));
    logLine(`joined "${peer.settings?.federationName}" as ${peer.peerId}`);
    await runUntilSignal(peer);
  });

  program
    .command('start')
    .description('run this peer of its federation until Ctrl-C')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .action(async (o) => {
      const peer = await Peer.open({ dataDir: o.dataDir, log: logLine });
      await peer.start();
      for (const a of peer.addresses()) logLine(`listening on ${a}`);
      await runUntilSignal(peer);
    });

  program
    .command('status')
    .description("the federation as this peer's data directory records it")
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .addOption(new Option('--json', 'print as JSON'))
    .action(async (o) => {
      const peer = await Peer.open({ dataDir: o.dataDir });
      const fed = peer.settings;
      if (fed === null) throw new Error(`${o.dataDir} belongs to no federation; create or join one first`);
      const dir = await openDataDir(o.dataDir);
      const checkpoints = await dir.listCheckpoints();
      const metrics = await dir.readMetrics();
      const file = await dir.readFederation();
      const report = {
        peerId: peer.peerId,
        federation: fed.federationName,
        federationId: fed.federationId,
        members: file?.members.map((m) => ({ peerId: m.peerId, name: m.name })) ?? [],
        term: file?.raft.term ?? 0,
        rounds: fed.rounds ?? null,
        committedRound: checkpoints.at(-1)?.round ?? 0,
        checkpoints,
        lastMetrics: metrics.at(-1) ?? null,
      };
      if (o.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      console.log(`federation "${report.federation}" (${report.federationId})`);
      console.log(`peer ${report.peerId}`);
      console.log(`members: ${report.members.map((m) => `${m.name} (${m.peerId})`).join(', ')}`);
      console.log(`committed round ${report.committedRound}${report.rounds ? ` of ${report.rounds}` : ''}, term ${report.term}`);
      if (report.lastMetrics) console.log(`last metrics: ${JSON.stringify(report.lastMetrics)}`);
    });
}
