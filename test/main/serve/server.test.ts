// The serve endpoint's guards: the per-start token on the page and the socket, the Host check,
// message size limits, and schema validation with one-line errors back to the caller.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import WebSocket from 'ws';
import { startServer, tokenMatches, type RunningServer } from '../../../src/main/serve/server.ts';
import { validatedApi } from '../../../src/main/api/validate.ts';
import { MAX_WS_MESSAGE_BYTES, type PeerApi } from '../../../src/shared/api.ts';
import { exportFile } from '../../../src/main/api/exports.ts';
import { mkdir } from 'node:fs/promises';

const calls: { method: string; args: unknown[] }[] = [];
const record =
  (method: string, result: unknown = null) =>
  async (...args: unknown[]) => {
    calls.push({ method, args });
    return result;
  };
const fake = {
  version: record('version', '9.9.9'),
  createInvite: record('createInvite', { id: 'i', code: 'ff1-x', usesLeft: 1, expiresAt: 0, revoked: false, state: 'active' }),
  revokeInvite: async () => {
    throw new Error('no invite with that id\nsecond line never sent');
  },
} as unknown as PeerApi;

let server: RunningServer;
const EXPORT_ID = 'adapter-round-2-2026-11-30T10-00-00-000Z';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ff-serve-'));
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>t</title>');
  await writeFile(path.join(dir, 'app.js'), 'console.log(1)');
  await mkdir(path.join(dir, 'exports', EXPORT_ID), { recursive: true });
  await writeFile(path.join(dir, 'exports', EXPORT_ID, 'adapter_config.json'), '{"r":2}');
  await writeFile(path.join(dir, 'exports', 'secret.txt'), 'not an export');
  server = await startServer({ api: validatedApi(fake), rendererDir: dir, download: (id, f) => exportFile(path.join(dir, 'exports'), id, f) });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function get(pathAndQuery: string, host = `127.0.0.1:${server.port}`): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: server.port, path: pathAndQuery, headers: { host } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

function connect(token: string | null, extra: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket | null; status: number | null }> {
  return new Promise((resolve) => {
    const q = token === null ? '' : `?token=${token}`;
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api${q}`, extra);
    ws.on('open', () => resolve({ ws, status: null }));
    ws.on('unexpected-response', (_req, res) => resolve({ ws: null, status: res.statusCode ?? 0 }));
    ws.on('error', () => resolve({ ws: null, status: -1 }));
  });
}

function ask(ws: WebSocket, text: string | Buffer): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>));
    ws.send(text);
  });
}

describe('fedforward serve: the token', () => {
  it('prints a loopback URL with a long random token', () => {
    expect(server.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[0-9a-f]{64}$`));
    expect(tokenMatches(server.token, server.token)).toBe(true);
    expect(tokenMatches(server.token, server.token.slice(1))).toBe(false);
    expect(tokenMatches(server.token, null)).toBe(false);
  });

  it('serves the page only with the token, with the CSP', async () => {
    expect((await get('/')).status).toBe(401);
    expect((await get('/?token=nope')).status).toBe(401);
    const ok = await get(`/?token=${server.token}`);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-security-policy']).toContain("script-src 'self'");
    expect(ok.headers['referrer-policy']).toBe('no-referrer');
    expect((await get('/app.js')).status).toBe(200);
    expect((await get('/../../etc/passwd')).status).toBe(404);
  });

  it('serves an exported file as an attachment, with the token, and nothing else under /download', async () => {
    const url = `/download/${EXPORT_ID}/adapter_config.json`;
    expect((await get(url)).status).toBe(401);
    const ok = await get(`${url}?token=${server.token}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('{"r":2}');
    expect(ok.headers['content-disposition']).toBe('attachment; filename="adapter_config.json"');
    for (const bad of [`/download/${EXPORT_ID}/missing.json`, '/download/secret.txt', `/download/${EXPORT_ID}/..%2F..%2Findex.html`, '/download/..%2Fexports/secret.txt', `/download/${EXPORT_ID}`]) {
      expect((await get(`${bad}?token=${server.token}`)).status, bad).toBe(404);
    }
  });

  it('refuses another Host (DNS rebinding)', async () => {
    expect((await get(`/?token=${server.token}`, `evil.example:${server.port}`)).status).toBe(403);
    const r = await connect(server.token, { headers: { host: 'evil.example' } });
    expect(r.status).toBe(403);
  });

  it('refuses the WebSocket without the token or with a wrong one (401)', async () => {
    expect((await connect(null)).status).toBe(401);
    expect((await connect('0'.repeat(64))).status).toBe(401);
    expect((await connect(server.token, { origin: 'http://evil.example' })).status).toBe(403);
  });
});

describe('fedforward serve: messages', () => {
  it('answers a valid call and validates the arguments with the schema (defaults filled in)', async () => {
    const { ws } = await connect(server.token);
    expect(await ask(ws!, JSON.stringify({ id: 1, method: 'version', args: [] }))).toEqual({ id: 1, ok: true, result: '9.9.9' });
    calls.length = 0;
    const r = await ask(ws!, JSON.stringify({ id: 2, method: 'createInvite', args: [{ uses: 3 }] }));
    expect(r.ok).toBe(true);
    expect(calls).toEqual([{ method: 'createInvite', args: [{ expiresHours: 24, uses: 3, for: [] }] }]);
    ws!.close();
  });

  it('sends one-line errors for bad input, never calling the method', async () => {
    const { ws } = await connect(server.token);
    calls.length = 0;
    const cases: [string | Buffer, RegExp][] = [
      ['not json', /must be JSON/],
      [JSON.stringify({ id: 3, method: 'version' }), /args/],
      [JSON.stringify({ id: 4, method: 'constructor', args: [] }), /unknown method "constructor"/],
      [JSON.stringify({ id: 5, method: 'createInvite', args: [{ uses: 0 }] }), /^createInvite: uses: at least 1$/],
      [JSON.stringify({ id: 6, method: 'createInvite', args: [{ expiresHours: 'soon' }] }), /^createInvite: expiresHours: /],
      [JSON.stringify({ id: 7, method: 'join', args: ['ff1-x'] }), /^join: expects at least 2 argument/],
      [JSON.stringify({ id: 8, method: 'revokeInvite', args: ['abc'] }), /^no invite with that id$/],
      [Buffer.from([1, 2, 3]), /binary/],
    ];
    for (const [text, re] of cases) {
      const r = await ask(ws!, text);
      expect(r.ok).toBe(false);
      expect(String(r.error)).toMatch(re);
      expect(String(r.error)).not.toContain('\n');
    }
    expect(calls).toEqual([]);
    ws!.close();
  });

  it('closes a connection that sends a message over the size limit', async () => {
    const { ws } = await connect(server.token);
    const closed = new Promise<number>((r) => ws!.on('close', (code) => r(code)));
    ws!.send(JSON.stringify({ id: 1, method: 'version', args: ['x'.repeat(MAX_WS_MESSAGE_BYTES + 10)] }));
    expect(await closed).toBe(1009);
  });

  it('pushes events to every connected page', async () => {
    const { ws } = await connect(server.token);
    const got = new Promise<unknown>((r) => ws!.once('message', (d) => r(JSON.parse(String(d)))));
    server.broadcast('step', { round: 1, step: 1, steps: 2, loss: 0.5, at: 1 });
    expect(await got).toEqual({ event: 'step', payload: { round: 1, step: 1, steps: 2, loss: 0.5, at: 1 } });
    ws!.close();
  });
});
