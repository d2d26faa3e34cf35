// The Bridge over the WebSocket of `fedforward serve`, for a browser page without Electron's preload.
// Calls are {id, method, args} → {id, ok, result | error}; pushes are {event, payload}.
import type { Bridge } from '../../shared/bridge.ts';

export interface WsBridgeOptions {
  /** a WebSocket constructor (tests pass a fake) */
  WebSocketImpl?: typeof WebSocket;
  /** ms before a call with no answer fails */
  callTimeoutMs?: number;
  /** first reconnect delay, doubled up to 10 s */
  reconnectMs?: number;
  /** told when the connection opens (true) or drops (false) */
  onConnection?: (open: boolean) => void;
}

export interface WsBridge extends Bridge {
  close(): void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export function createWsBridge(url: string, opts: WsBridgeOptions = {}): WsBridge {
  const Impl = opts.WebSocketImpl ?? WebSocket;
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const pending = new Map<number, Pending>();
  let queue: string[] = [];
  let nextId = 1;
  let ws: WebSocket | null = null;
  let closed = false;
  let delay = opts.reconnectMs ?? 500;

  const connect = () => {
    const sock = new Impl(url);
    ws = sock;
    sock.onopen = () => {
      delay = opts.reconnectMs ?? 500;
      opts.onConnection?.(true);
      const q = queue;
      queue = [];
      for (const m of q) sock.send(m);
    };
    sock.onmessage = (ev: MessageEvent) => onMessage(typeof ev.data === 'string' ? ev.data : '');
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      opts.onConnection?.(false);
      for (const [id, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new Error('the connection to the peer was lost'));
        pending.delete(id);
      }
      if (!closed) {
        setTimeout(() => !closed && connect(), delay);
        delay = Math.min(delay * 2, 10_000);
      }
    };
  };

  const onMessage = (text: string) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof msg.event === 'string') {
      for (const cb of listeners.get(msg.event) ?? []) cb(msg.payload);
      return;
    }
    const p = typeof msg.id === 'number' ? pending.get(msg.id) : undefined;
    if (!p) return;
    pending.delete(msg.id as number);
    clearTimeout(p.timer);
    if (msg.ok === true) p.resolve(msg.result);
    else p.reject(new Error(typeof msg.error === 'string' ? msg.error : 'the peer refused the call'));
  };

  connect();

  return {
    invoke(method, ...args) {
      if (closed) return Promise.reject(new Error('the bridge is closed'));
      const id = nextId++;
      const text = JSON.stringify({ id, method, args });
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${method}: no answer from the peer`));
        }, opts.callTimeoutMs ?? 120_000);
        pending.set(id, { resolve, reject, timer });
        if (ws && ws.readyState === 1) ws.send(text);
        else queue.push(text);
      });
    },
    on(event, cb) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(cb);
      return () => set.delete(cb);
    },
    close() {
      closed = true;
      ws?.close();
    },
  };
}

/** The serve token: from ?token= (kept for reloads in sessionStorage), else the stored one. */
export function tokenFromLocation(loc: { search: string }, storage?: Pick<Storage, 'getItem' | 'setItem'>): string | null {
  const t = new URLSearchParams(loc.search).get('token');
  if (t) {
    storage?.setItem('fedforward-token', t);
    return t;
  }
  return storage?.getItem('fedforward-token') ?? null;
}

export function apiUrl(loc: { protocol: string; host: string }, token: string): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api?token=${encodeURIComponent(token)}`;
}
