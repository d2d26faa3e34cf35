/**
 * Registers the peer's API on Electron's ipcMain, one channel per method.
 *
 * Does not import `electron`: it takes anything shaped like ipcMain, so tests use a fake.
 * The preload script sends every call as `ipcRenderer.invoke(CHANNEL_PREFIX + method, args)`
 * with `args` one array; a handler rejects anything else before the API sees it.
 */
import { CHANNEL_PREFIX, MAX_ARGS, isValidMethodName } from '../../shared/bridge.ts';

/** The part of Electron's IpcMain used here. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: unknown, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

/** An API method; `any[]` so that methods with typed parameters fit. */
export type ApiMethod = (...args: any[]) => Promise<unknown>;
export type Api = Record<string, ApiMethod>;

/**
 * Registers `ipcMain.handle('fedforward:' + name, ...)` for every method of `api`.
 * Returns a function that removes all of them again.
 */
export function registerApi(ipcMain: IpcMainLike, api: Api): () => void {
  const methods = Object.entries(api).filter(([, method]) => typeof method === 'function');
  for (const [name] of methods) {
    if (!isValidMethodName(name)) throw new Error(`invalid API method name: ${JSON.stringify(name)}`);
  }
  const channels: string[] = [];
  for (const [name, method] of methods) {
    const channel = CHANNEL_PREFIX + name;
    ipcMain.handle(channel, async (_event: unknown, args: unknown) => {
      if (!Array.isArray(args)) throw new TypeError(`${name}: arguments must be an array`);
      if (args.length > MAX_ARGS) throw new RangeError(`${name}: at most ${MAX_ARGS} arguments`);
      return await method.apply(api, args);
    });
    channels.push(channel);
  }
  let registered = true;
  return () => {
    if (!registered) return;
    registered = false;
    for (const channel of channels) ipcMain.removeHandler(channel);
  };
}
