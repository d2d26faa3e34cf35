/**
 * The preload script: exposes `window.fedforward` (see src/shared/bridge.ts) and nothing else.
 * Runs sandboxed, so it is bundled into one CommonJS file that requires only `electron`.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import {
  CHANNEL_PREFIX,
  EVENT_CHANNEL,
  isBridgeEventMessage,
  isValidMethodName,
  type Bridge,
} from '../shared/bridge.ts';

const bridge: Bridge = {
  invoke(method: string, ...args: unknown[]): Promise<unknown> {
    if (!isValidMethodName(method)) {
      return Promise.reject(new Error(`invalid method name: ${String(method)}`));
    }
    // The arguments travel as one array; the main side checks that it is one.
    return ipcRenderer.invoke(CHANNEL_PREFIX + method, args);
  },
  on(event: string, cb: (payload: unknown) => void): () => void {
    const listener = (_e: IpcRendererEvent, message: unknown): void => {
      if (isBridgeEventMessage(message) && message.event === event) cb(message.payload);
    };
    ipcRenderer.on(EVENT_CHANNEL, listener);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, listener);
    };
  },
};

contextBridge.exposeInMainWorld('fedforward', bridge);
