// `fedforward create | id | invite | join | approve | pending | remove | start | status`: the
// federation peer, headless.
//   create   a new federation (this peer its first member); settings signed by this peer's key
//   id       this peer's id, which a newcomer gives the inviter (invite --for) out of band
//   invite   an invite code for a newcomer (uses, expiry and invitee tracked in the data directory)
//   join     join with a code (from a prompt, stdin or a file: never argv, so `ps` never shows it)
//   approve  let in a newcomer that holds an invite bound to nobody; pending lists them
//   remove   evict a member: its connections close, it cannot reconnect, it gets no more rounds
//   start    run this peer of its federation (until Ctrl-C)
//   status   what the data directory says: federation, members, committed rounds, last metrics
// approve and remove are carried out by the running peer of that data directory (control/ files).
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { backendOption, nonNegativeInt, nonNegativeNumber, positiveInt } from './options.ts';
import { hyperParamsOf, loraOf, trainingOptions } from './simulate.ts';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { Peer, readPending, readRecordedStatus, requestOfRunningPeer } from '../federation/peer.ts';
import { openDataDir } from '../storage/data_dir.ts';

const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4001';

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
    .option('--limit <n>', 'at most this many local examples (0 = all)', nonNegativeInt, 0)
    .option('--data-seed <n>', 'seed of the local train/test split', nonNegativeInt, 0);
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

function electionOption(cmd: Command): Command {
  return cmd.option('--election-timeout <ms>', 'least election timeout; it grows with measured round trips and load (default 1000)', positiveInt);
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

/** The invite code: from a file, standard input (-), or a prompt; never from argv, where `ps` shows it. */
async function readCode(file: string | undefined): Promise<string> {
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } else if (file !== undefined) text = await readFile(file, 'utf8');
  else if (process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      text = await rl.question('invite code: ');
    } finally {
      rl.close();
    }
  } else throw new Error('no invite code: give --code-file FILE, or --code-file - to read it from standard input');
  const code = text.trim();
  if (code === '') throw new Error('the invite code is empty');
  return code;
}

/** Have the running peer of `dataDir` carry out `req`, and print its answer. */
async function askRunningPeer(dataDir: string, req: { type: 'approve' | 'remove'; peerId: string }): Promise<void> {
  const answer = await requestOfRunningPeer(dataDir, req);
  if (answer === null) console.log(`queued: the peer of ${dataDir} is not running; it carries this out when it starts`);
  else if (answer.startsWith('error: ')) throw new Error(answer.slice('error: '.length));
  else console.log(answer);
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
    .option('--seed <n>', 'federation seed (assignment, perturbations, initial adapter)', nonNegativeInt, 0)
    .option('--deadline <s>', 'seconds the aggregator waits for updates each round', positive, 60)
    .option('--relay <multiaddr>', 'a member with a public address that relays for members behind a NAT (…/p2p/<its peer id>, see fedforward id), repeatable', multiaddrList)
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
      ...(o.relay ? { relays: o.relay } : {}),
    });
    if (o.json) console.log(JSON.stringify({ peerId: peer.peerId, settings }, null, 2));
    else console.log(`created federation "${settings.federationName}" (${settings.federationId}); peer ${peer.peerId}`);
  });

  program
    .command('invite')
    .description('print an invite code for a newcomer')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .option('--hours <h>', 'hours until the code expires', positive, 24)
    .option('--uses <n>', 'how many peers may join with it (default: one, or one per --for)', positiveInt)
    .option('--for <peer-id>', 'admit only this peer id (the newcomer prints it with fedforward id), repeatable; without it a member must approve the newcomer', (v: string, prev: string[] | undefined) => [...(prev ?? []), v.trim()])
    .option('--json', 'print {code, expiresAt} as JSON')
    .action(async (o) => {
      const peer = await Peer.open({ dataDir: o.dataDir });
      const expiresMs = Math.round(o.hours * 3600 * 1000);
      const code = await peer.invite({ expiresMs, ...(o.uses ? { uses: o.uses } : {}), ...(o.for ? { for: o.for } : {}) });
      if (o.json) console.log(JSON.stringify({ code, expiresAt: Date.now() + expiresMs, uses: o.uses ?? o.for?.length ?? 1, for: o.for ?? null }));
      else {
        console.log(code);
        if (!o.for) console.error('bound to nobody: approve the newcomer when it asks (fedforward pending, fedforward approve PEERID)');
      }
    });

  program
    .command('id')
    .description("print this peer's id (created on first use), for an inviter's invite --for")
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .action(async (o) => {
      const peer = await Peer.open({ dataDir: o.dataDir });
      console.log(peer.peerId);
    });

  program
    .command('pending')
    .description('newcomers waiting for approval at this peer (they hold an invite it issued, bound to nobody)')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .option('--json', 'print as JSON')
    .action(async (o) => {
      const list = await readPending(o.dataDir);
      if (o.json) console.log(JSON.stringify(list, null, 2));
      else if (list.length === 0) console.log('nobody is waiting');
      else for (const p of list) console.log(`${p.peerId}  ${p.name}  ${p.approved ? 'approved' : 'waiting'} since ${new Date(p.at).toISOString()}`);
    });

  program
    .command('approve')
    .description('let in a newcomer waiting at this peer (check its id with its owner first)')
    .argument('<peer-id>', 'the newcomer\'s peer id, as fedforward pending lists it')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .action(async (id: string, o) => {
      await askRunningPeer(o.dataDir, { type: 'approve', peerId: id.trim() });
    });

  program
    .command('remove')
    .description('evict a member: its connections close, it cannot connect again and gets no further rounds')
    .argument('<member>', 'the member\'s peer id or name')
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .action(async (member: string, o) => {
      const peer = await Peer.open({ dataDir: o.dataDir });
      const fed = await peer.dir.readFederation();
      if (fed === null) throw new Error(`${o.dataDir} belongs to no federation`);
      const matches = fed.members.filter((m) => m.peerId === member || m.name === member);
      if (matches.length !== 1) throw new Error(matches.length === 0 ? `no member "${member}" (see fedforward status)` : `"${member}" names ${matches.length} members: give the peer id`);
      await askRunningPeer(o.dataDir, { type: 'remove', peerId: matches[0]!.peerId });
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
    .description("join a federation with an invite code and this peer's own data, then run until Ctrl-C; the code is asked for, or read from --code-file (- for stdin)")
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .requiredOption('--peer-name <name>', "this peer's name in the federation")
    .option('--code-file <file>', 'read the invite code from this file, or from standard input with -');
  dataOptions(addressOptions(electionOption(join))).action(async (o) => {
    const code = await readCode(o.codeFile);
    const peer = await Peer.open({ dataDir: o.dataDir, listen: o.listen ?? [DEFAULT_LISTEN], announce: o.announce, log: logLine, ...(o.electionTimeout ? { electionTimeoutMs: o.electionTimeout } : {}) });
    await peer.join(code, o.peerName, dataSpecOf(o, o.peerName));
    logLine(`joined "${peer.settings?.federationName}" as ${peer.peerId}`);
    await runUntilSignal(peer);
  });

  electionOption(program
    .command('start')
    .description('run this peer of its federation until Ctrl-C')
    .requiredOption('--data-dir <dir>', "this peer's data directory"))
    .action(async (o) => {
      const peer = await Peer.open({ dataDir: o.dataDir, log: logLine, ...(o.electionTimeout ? { electionTimeoutMs: o.electionTimeout } : {}) });
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
      const seen = await readRecordedStatus(o.dataDir);
      const last = checkpoints.at(-1);
      const aggregator = seen?.aggregator ?? null;
      const report = {
        peerId: peer.peerId,
        aggregator: aggregator === null ? null : { peerId: aggregator, name: file?.members.find((m) => m.peerId === aggregator)?.name ?? seen?.aggregatorName ?? null, term: seen!.term },
        seenAt: seen?.at ?? null,
        role: seen?.role ?? null,
        committedSha256: last?.sha256 ?? null,
        federation: fed.federationName,
        federationId: fed.federationId,
        members: file?.members.map((m) => ({ peerId: m.peerId, name: m.name })) ?? [],
        term: Math.max(file?.raft.term ?? 0, seen?.term ?? 0),
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
      const when = report.seenAt === null ? '' : ` (as this peer saw it at ${new Date(report.seenAt).toISOString().slice(0, 19)}Z${report.role === 'stopped' ? ', before it stopped' : ''})`;
      console.log(report.aggregator === null ? `aggregator: none known${when}` : `aggregator: ${report.aggregator.name ?? ''} (${report.aggregator.peerId}), term ${report.aggregator.term}${when}`);
      console.log(`last committed round ${report.committedRound}${report.rounds ? ` of ${report.rounds}` : ''}${report.committedSha256 ? `, sha256 ${report.committedSha256}` : ''}; term ${report.term}`);
      if (report.lastMetrics) console.log(`last metrics: ${JSON.stringify(report.lastMetrics)}`);
    });
}
