// The one Bridge of this page: Electron's preload (window.fedforward) when present, else the
// WebSocket of `fedforward serve`, with the token the page was opened with.
import type { Bridge } from '../../shared/bridge.ts';
import type { ApiArgs, ApiEventName, ApiEvents, ApiMethodName, ApiResults } from '../../shared/api.ts';
import { apiUrl, createWsBridge, tokenFromLocation } from './ws_bridge.ts';

let bridge: Bridge | null = null;
export const connection = { transport: 'none' as 'electron' | 'websocket' | 'none', open: false, listeners: new Set<(open: boolean) => void>() };

export function getBridge(): Bridge {
  if (bridge) return bridge;
  const fromPreload = (globalThis as { fedforward?: Bridge }).fedforward;
  if (fromPreload) {
    connection.transport = 'electron';
    connection.open = true;
    bridge = fromPreload;
    return bridge;
  }
  const token = tokenFromLocation(location, sessionStorage);
  if (!token) throw new Error('no token: open the URL that `fedforward serve` printed');
  connection.transport = 'websocket';
  bridge = createWsBridge(apiUrl(location, token), {
    onConnection: (open) => {
      connection.open = open;
      for (const l of connection.listeners) l(open);
    },
  });
  return bridge;
}

/**
 * Where the browser downloads an exported file (`fedforward serve` only, behind the same token as
 * the page); null in the desktop app, which opens the folder instead.
 */
export function downloadHref(exportId: string, file: string): string | null {
  if (connection.transport !== 'websocket') return null;
  const token = tokenFromLocation(location, sessionStorage);
  return token ? `/download/${encodeURIComponent(exportId)}/${encodeURIComponent(file)}?token=${encodeURIComponent(token)}` : null;
}

/** A typed view of a Bridge. */
export interface Api {
  call<M extends ApiMethodName>(method: M, ...args: ApiArgs[M]): Promise<ApiResults[M]>;
  on<E extends ApiEventName>(event: E, cb: (payload: ApiEvents[E]) => void): () => void;
}

export function typed(b: Bridge): Api {
  return {
    call: (method, ...args) => b.invoke(method, ...(args as unknown[])) as never,
    on: (event, cb) => b.on(event, cb as (p: unknown) => void),
  };
}
