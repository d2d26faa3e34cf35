// `fedforward serve`: the built renderer over HTTP on a loopback port, and the peer's API over a
// WebSocket at /api. A random token per start guards both the page and the socket; requests for
// another Host are refused (DNS rebinding), messages are size-limited and schema-checked, and
// every failure goes back to the caller as one line.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_WS_MESSAGE_BYTES, WsRequest, type ApiEventName, type WsReply } from '../../shared/api.ts';
import { dispatch, oneLineError, type ValidatedApi } from '../api/validate.ts';
import { CONTENT_SECURITY_POLICY } from '../../shared/csp.ts';


const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

export interface ServeOptions {
  api: ValidatedApi;
  /** the built renderer (out/renderer) */
  rendererDir: string;
  host?: string;
  port?: number;
  /** default: 32 random bytes, hex */
  token?: string;
  /** The file of an export to download (`/download/<export>/<file>?token=`), or null when there is none. */
  download?: (exportId: string, file: string) => Promise<string | null>;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  token: string;
  /** Pushes an event to every connected page. */
  broadcast(event: ApiEventName, payload: unknown): void;
  close(): Promise<void>;
}

export function tokenMatches(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? randomBytes(32).toString('hex');
  const root = path.resolve(opts.rendererDir);
  let port = 0;
  const hostOk = (h: string | undefined) => {
    if (!h) return false;
    const allowed = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`];
    return allowed.includes(h.toLowerCase());
  };

  const server = createServer((req, res) => {
    void serveStatic(req, res).catch((e: unknown) => send(res, 500, `error: ${oneLineError(e)}`));
  });

  async function serveStatic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostOk(req.headers.host)) return send(res, 403, 'wrong Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    const url = new URL(req.url ?? '/', 'http://localhost');
    let rel = decodeURIComponent(url.pathname);
    if (rel.startsWith('/download/')) return serveDownload(req, res, url, rel);
    if (rel === '/' || rel === '/index.html') {
      if (!tokenMatches(token, url.searchParams.get('token'))) return send(res, 401, 'missing or wrong token: open the URL that `fedforward serve` printed');
      rel = '/index.html';
    }
    const file = path.resolve(root, '.' + rel);
    if (file !== root && !file.startsWith(root + path.sep)) return send(res, 404, 'not found');
    let body: Buffer;
    try {
      if (!(await stat(file)).isFile()) return send(res, 404, 'not found');
      body = await readFile(file);
    } catch {
      return send(res, 404, rel === '/index.html' ? 'the renderer is not built: run `npx electron-vite build`' : 'not found');
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': body.length,
      ...securityHeaders(),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** An exported file, behind the token like the page: served as an attachment, streamed. */
  async function serveDownload(req: IncomingMessage, res: ServerResponse, url: URL, rel: string): Promise<void> {
    if (!tokenMatches(token, url.searchParams.get('token'))) return send(res, 401, 'missing or wrong token');
    const parts = rel.split('/');
    const file = parts.length === 4 && opts.download ? await opts.download(parts[2]!, parts[3]!) : null;
    if (file === null) return send(res, 404, 'no such exported file');
    const size = (await stat(file)).size;
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': size,
      'Content-Disposition': `attachment; filename="${path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_')}"`,
      ...securityHeaders(),
    });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
  const clients = new Set<WebSocket>();

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const origin = req.headers.origin;
    const refuse = (code: number, why: string) => {
      socket.end(`HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : 'Forbidden'}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(why)}\r\n\r\n${why}`);
    };
    if (url.pathname !== '/api') return refuse(403, 'no such endpoint');
    if (!hostOk(req.headers.host)) return refuse(403, 'wrong Host header');
    if (origin !== undefined && !hostOk(origin.replace(/^http:\/\//, ''))) return refuse(403, 'wrong Origin');
    if (!tokenMatches(token, url.searchParams.get('token'))) return refuse(401, 'missing or wrong token');
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('error', () => clients.delete(ws));
      ws.on('message', (data, isBinary) => void onMessage(ws, data as Buffer, isBinary));
    });
  });

  async function onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): Promise<void> {
    let id = -1;
    try {
      if (isBinary) throw new Error('binary messages are not accepted');
      let raw: unknown;
      try {
        raw = JSON.parse(data.toString('utf8'));
      } catch {
        throw new Error('a message must be JSON: {"id", "method", "args"}');
      }
      const rid = (raw as { id?: unknown } | null)?.id;
      if (typeof rid === 'number' && Number.isSafeInteger(rid) && rid >= 0) id = rid;
      const r = WsRequest.safeParse(raw);
      if (!r.success) throw new Error(`a message must be {"id", "method", "args"}: ${r.error.issues[0]?.path.join('.') || 'message'}: ${r.error.issues[0]?.message ?? 'invalid'}`);
      const result = await dispatch(opts.api, r.data.method, r.data.args);
      reply(ws, { id, ok: true, result: result ?? null });
    } catch (e) {
      reply(ws, { id, ok: false, error: oneLineError(e) });
    }
  }

  function reply(ws: WebSocket, msg: WsReply): void {
    if (ws.readyState !== ws.OPEN) return;
    let text = JSON.stringify(msg);
    if (Buffer.byteLength(text) > 16 * MAX_WS_MESSAGE_BYTES && 'id' in msg) text = JSON.stringify({ id: msg.id, ok: false, error: 'the result is too large to send' });
    ws.send(text);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr !== null ? addr.port : (opts.port ?? 0);
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}/?token=${token}`,
    port,
    host,
    token,
    broadcast(event, payload) {
      const text = JSON.stringify({ event, payload } satisfies WsReply);
      for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(text);
    },
    async close() {
      for (const ws of clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function securityHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
  };
}

function send(res: ServerResponse, code: number, text: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', ...securityHeaders() });
  res.end(text + '\n');
}
