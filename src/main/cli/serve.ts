// `fedforward serve`: this machine's peer with its interface in a browser, on a loopback port.
import type { Command } from 'commander';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { serve } from '../serve/index.ts';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0..65535');
  return n;
}

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('run this peer and serve its interface on a loopback port (open the printed URL)')
    .option('--port <n>', 'HTTP port (0 = any free port)', port, 0)
    .option('--host <addr>', 'address to listen on (keep it loopback; forward it with ssh -L)', '127.0.0.1')
    .option('--data-dir <dir>', "the peer's data directory", '.fedforward')
    .option('--listen <multiaddr...>', 'libp2p listen addresses of the peer', ['/ip4/127.0.0.1/tcp/0'])
    .option('--renderer <dir>', 'the built renderer (npx electron-vite build)')
    .action(async (o) => {
      if (!['127.0.0.1', 'localhost', '::1'].includes(o.host)) console.error(`fedforward: warning: serving on ${o.host}, not loopback; the token is the only guard`);
      const s = await serve({
        dataDir: path.resolve(o.dataDir),
        host: o.host,
        port: o.port,
        listen: o.listen,
        ...(o.renderer ? { rendererDir: path.resolve(o.renderer) } : {}),
        log: (l) => console.error(l),
      });
      console.log(`FedForward is serving this peer's interface at ${s.server.url}`);
      const stop = () => {
        void s.close().finally(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
