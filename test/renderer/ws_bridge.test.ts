// The browser-side Bridge over the serve WebSocket, against a fake WebSocket.
import { describe, expect, it } from 'vitest';
import { apiUrl, createWsBridge, tokenFromLocation } from '../../src/renderer/lib/ws_bridge.ts';

class FakeSocket {
  static last: FakeSocket | null = null;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onclose: (() => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  readonly url: string;
  constructor(url: string) {
    this.url = url;
    FakeSocket.last = this;
    FakeSocket.all.push(this);
  }
  send(t: string) {
    this.sent.push(t);
  }
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  reply(v: unknown) {
    this.onmessage?.({ data: JSON.stringify(v) });
  }
}
const Impl = FakeSocket as unknown as typeof WebSocket;

describe('the WebSocket bridge', () => {
  it('queues calls until open, matches replies by id, and passes errors as one Error', async () => {
    const b = createWsBridge('ws://h/api?token=t', { WebSocketImpl: Impl });
    const s = FakeSocket.last!;
    const p1 = b.invoke('version');
    const p2 = b.invoke('revokeInvite', 'abc');
    expect(s.sent).toEqual([]);
    s.open();
    expect(s.sent.map((t) => JSON.parse(t))).toEqual([
      { id: 1, method: 'version', args: [] },
      { id: 2, method: 'revokeInvite', args: ['abc'] },
    ]);
    s.reply({ id: 2, ok: false, error: 'no invite with that id' });
    s.reply({ id: 1, ok: true, result: '0.1.0' });
    await expect(p1).resolves.toBe('0.1.0');
    await expect(p2).rejects.toThrow('no invite with that id');
    b.close();
  });

  it('delivers pushed events to the subscribers of that event until they unsubscribe', () => {
    const b = createWsBridge('ws://h/api', { WebSocketImpl: Impl });
    const s = FakeSocket.last!;
    s.open();
    const got: unknown[] = [];
    const off = b.on('step', (p) => got.push(p));
    b.on('round', () => got.push('wrong'));
    s.reply({ event: 'step', payload: { step: 1 } });
    off();
    s.reply({ event: 'step', payload: { step: 2 } });
    s.onmessage?.({ data: 'not json' });
    expect(got).toEqual([{ step: 1 }]);
    b.close();
  });

  it('fails pending calls when the connection drops, and reconnects', async () => {
    const before = FakeSocket.all.length;
    const states: boolean[] = [];
    const b = createWsBridge('ws://h/api', { WebSocketImpl: Impl, reconnectMs: 5, onConnection: (o) => states.push(o) });
    const s = FakeSocket.last!;
    s.open();
    const p = b.invoke('status');
    s.close();
    await expect(p).rejects.toThrow(/connection to the peer was lost/);
    await new Promise((r) => setTimeout(r, 30));
    expect(FakeSocket.all.length).toBe(before + 2);
    expect(states).toEqual([true, false]);
    b.close();
  });

  it('takes the token from the page URL, keeps it for reloads, and builds the socket URL', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    expect(tokenFromLocation({ search: '?token=abc' }, storage)).toBe('abc');
    expect(tokenFromLocation({ search: '' }, storage)).toBe('abc');
    expect(tokenFromLocation({ search: '' })).toBe(null);
    expect(apiUrl({ protocol: 'http:', host: '127.0.0.1:5000' }, 'a b')).toBe('ws://127.0.0.1:5000/api?token=a%20b');
  });
});
