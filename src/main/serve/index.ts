// The headless interface: a Peer of DATA_DIR, its API, and the HTTP + WebSocket server carrying it.
import { fileURLToPath } from 'node:url';
import { openPeerApi, type PeerApiImpl, type PeerApiOptions } from '../api/peer_api.ts';
import { validatedApi } from '../api/validate.ts';
import { startServer, type RunningServer } from './server.ts';
import { exportFile } from '../api/exports.ts';

export const DEFAULT_RENDERER_DIR = fileURLToPath(new URL('../../../out/renderer', import.meta.url));

export interface ServeConfig extends PeerApiOptions {
  dataDir: string;
  host?: string;
  port?: number;
  rendererDir?: string;
  /** libp2p listen addresses of the peer */
  listen?: string[];
  log?: (line: string) => void;
}

export interface Serving {
  server: RunningServer;
  api: PeerApiImpl;
  close(): Promise<void>;
}

export async function serve(cfg: ServeConfig): Promise<Serving> {
  let server: RunningServer | null = null;
  const api = await openPeerApi(cfg.dataDir, (event, payload) => server?.broadcast(event, payload), cfg);
  try {
    server = await startServer({ api: validatedApi(api), rendererDir: cfg.rendererDir ?? DEFAULT_RENDERER_DIR, host: cfg.host, port: cfg.port, download: (id, file) => exportFile(api.peer.dir.exportsDir, id, file) });
  } catch (e) {
    api.close();
    await api.peer.stop();
    throw e;
  }
  // A peer that already belongs to a federation starts with the server.
  if (api.peer.settings !== null) void api.start().catch((e: unknown) => cfg.log?.(`cannot start the peer: ${e instanceof Error ? e.message : String(e)}`));
  const s = server;
  return {
    server: s,
    api,
    async close() {
      api.close();
      await s.close();
      await api.peer.stop();
    },
  };
}
