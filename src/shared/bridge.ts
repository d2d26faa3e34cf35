/**
 * The bridge between the renderer and the peer (main process).
 *
 * In the desktop app the preload script exposes an object of this shape as
 * `window.fedforward` (contextBridge); in headless mode (`fedforward serve`) the
 * same interface is carried over a WebSocket. The renderer only ever sees this.
 */
export interface Bridge {
  /** Calls the API method `method` on the peer with `args`; resolves to its result. */
  invoke(method: string, ...args: unknown[]): Promise<unknown>;
  /** Subscribes to the peer's pushes named `event`; returns an unsubscribe function. */
  on(event: string, cb: (payload: unknown) => void): () => void;
}

/** Every API method `m` is an IPC channel `CHANNEL_PREFIX + m` (ipcMain.handle). */
export const CHANNEL_PREFIX = 'fedforward:';

/** The one IPC channel on which the peer pushes events to the renderer. */
export const EVENT_CHANNEL = 'fedforward:event';

/** What travels on EVENT_CHANNEL: `webContents.send(EVENT_CHANNEL, { event, payload })`. */
export interface BridgeEventMessage {
  event: string;
  payload: unknown;
}

/** Longest accepted API method name, and most arguments accepted per call. */
export const MAX_METHOD_NAME_LENGTH = 64;
export const MAX_ARGS = 16;

/** API method names: identifiers, so a name can never smuggle in another channel. */
const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function isValidMethodName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= MAX_METHOD_NAME_LENGTH && METHOD_NAME.test(name);
}

export function isBridgeEventMessage(value: unknown): value is BridgeEventMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { event?: unknown }).event === 'string'
  );
}
