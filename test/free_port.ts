// A TCP port on loopback that nothing listens on now, for a test or bench that must name its
// listen addresses before it starts (the OS picks it: bind port 0, read it, let it go).
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
