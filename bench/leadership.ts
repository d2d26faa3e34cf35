// Steady leadership under load: a 3-peer federation of real `fedforward` processes on loopback,
// with a CPU hog of 4 busy processes beside it, runs 10 rounds; prints how many elections it took
// (terms in which some peer stood as candidate) and the event loop's worst lag per round.
//   node bench/leadership.ts [--rounds 10] [--hogs 4] [--model embedded] [--timeout-min 60] [--rtt-ms 200]
// --rtt-ms: every peer is reached through a TCP proxy in this process that holds each chunk for
// half that in each direction (the peers announce the proxy's port), so every round trip between
// peers takes that much longer.
// Not a test: its figure depends on the machine. Exit code 0 when every peer committed every round.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/free_port.ts';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    hogs: { type: 'string', default: '4' },
    model: { type: 'string', default: 'embedded' },
    'timeout-min': { type: 'string', default: '60' },
    'rtt-ms': { type: 'string', default: '0' },
  },
});
const HALF_RTT = Number(values['rtt-ms']) / 2;
const proxies: Server[] = [];

/** Forward `listen` → `target` on loopback, each chunk held HALF_RTT ms in each direction. */
function delayingProxy(listen: number, target: number): Promise<void> {
  const pipe = (from: Socket, to: Socket) => {
    from.on('data', (d: Buffer) => setTimeout(() => to.write(d), HALF_RTT));
    from.on('end', () => setTimeout(() => to.end(), HALF_RTT));
    from.on('error', () => to.destroy());
  };
  const server = createServer((inbound) => {
    const outbound = connect(target, '127.0.0.1');
    pipe(inbound, outbound);
    pipe(outbound, inbound);
  });
  proxies.push(server);
  return new Promise((resolve) => server.listen(listen, '127.0.0.1', () => resolve()));
}
const ROUNDS = Number(values.rounds);
const HOGS = Number(values.hogs);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/main/cli/index.ts');
const children: ChildProcess[] = [];
const t0 = Date.now();
const stamp = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(7);

/** Run the CLI to completion; resolves with its stdout. */
function cli(args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (err += d));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`fedforward ${args[0]}: ${err.trim()}`))));
    c.stdin.end(stdin ?? '');
  });
}

const logs: { peer: string; line: string }[] = [];
/** Start a long-running CLI peer (start or join), collecting its log lines. */
function run(name: string, args: string[], stdin?: string): ChildProcess {
  const c = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  children.push(c);
  let buf = '';
  c.stderr!.on('data', (d: Buffer) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      logs.push({ peer: name, line });
      console.log(`${stamp()} ${name}: ${line.replace(/^\[[^\]]+\] /, '')}`);
    }
  });
  c.on('exit', (code) => {
    if (code !== null && code !== 0) console.log(`${stamp()} ${name}: exited with ${code}`);
  });
  c.stdin!.end(stdin ?? '');
  return c;
}

async function main(): Promise<number> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-leadership-'));
  try {
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
    // With --rtt-ms each peer listens on its own port and announces its proxy's.
    const announced = new Map<number, number>();
    for (const port of [pa, pb, pc]) {
      if (HALF_RTT <= 0) continue;
      const front = await freePort();
      await delayingProxy(front, port);
      announced.set(port, front);
    }
    const addrs = (port: number) => ['--listen', `/ip4/127.0.0.1/tcp/${port}`, ...(announced.has(port) ? ['--announce', `/ip4/127.0.0.1/tcp/${announced.get(port)}`] : [])];
    const dir = (n: string) => path.join(tmp, n);
    const train = ['--max-local-steps', '2', '--batch-size', '4', '--max-length', '32', '--limit', '48'];
    await cli(['create', '--data-dir', dir('a'), '--name', 'leadership bench', '--peer-name', 'a', '--model', values.model!, '--rounds', String(ROUNDS), '--min-members', '3', '--deadline', '600', '--domain', 'imdb', ...addrs(pa), ...train]);
    const ids = [(await cli(['id', '--data-dir', dir('b')])).trim(), (await cli(['id', '--data-dir', dir('c')])).trim()];
    const code = (await cli(['invite', '--data-dir', dir('a'), ...ids.flatMap((id) => ['--for', id])])).trim();
    run('a', ['start', '--data-dir', dir('a')]);
    while (!logs.some((l) => l.peer === 'a' && l.line.includes('listening on'))) await new Promise((r) => setTimeout(r, 200));
    run('b', ['join', '--code-file', '-', '--data-dir', dir('b'), '--peer-name', 'b', '--domain', 'yelp', '--limit', '48', ...addrs(pb)], code);
    run('c', ['join', '--code-file', '-', '--data-dir', dir('c'), '--peer-name', 'c', '--domain', 'amazon', '--limit', '48', ...addrs(pc)], code);
    for (let i = 0; i < HOGS; i++) children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    console.log(`${stamp()} 3 peers and ${HOGS} busy processes on ${os.cpus().length} cores; ${ROUNDS} rounds${HALF_RTT > 0 ? `; ${2 * HALF_RTT} ms added to every round trip` : ''}`);
    const end = t0 + Number(values['timeout-min']) * 60_000;
    const committed = (peer: string) => Math.max(0, ...logs.filter((l) => l.peer === peer).map((l) => Number(/round (\d+) committed/.exec(l.line)?.[1] ?? 0)));
    while (Date.now() < end && !['a', 'b', 'c'].every((p) => committed(p) >= ROUNDS)) await new Promise((r) => setTimeout(r, 1000));
    const terms = new Set(logs.flatMap((l) => (/candidate in term (\d+)/.exec(l.line) ? [Number(/candidate in term (\d+)/.exec(l.line)![1])] : [])));
    const lags = logs.flatMap((l) => (/lagged at most (\d+) ms/.exec(l.line) ? [Number(/lagged at most (\d+) ms/.exec(l.line)![1])] : []));
    const done = ['a', 'b', 'c'].map(committed);
    // The creator's first election (term 1, alone) forms the federation; the others are churn.
    const churn = [...terms].filter((t) => t > 1).length;
    console.log(`\nrounds committed per peer: ${done.join(', ')} of ${ROUNDS} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    console.log(`elections: ${terms.size} (terms ${[...terms].sort((x, y) => x - y).join(', ')}); after the federation formed: ${churn}`);
    console.log(`event-loop lag per round at the aggregator (ms): ${lags.join(', ')} (max ${Math.max(0, ...lags)})`);
    return done.every((r) => r >= ROUNDS) ? 0 : 1;
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const p of proxies) p.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
