import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerApi, type IpcMainLike } from '../../src/main/app/ipc.ts';
import { CHANNEL_PREFIX, MAX_ARGS } from '../../src/shared/bridge.ts';

type Listener = (event: unknown, ...args: unknown[]) => unknown;

function fakeIpcMain(): IpcMainLike & { handlers: Map<string, Listener> } {
  const handlers = new Map<string, Listener>();
  return {
    handlers,
    handle(channel, listener) {
      if (handlers.has(channel)) throw new Error(`second handler for ${channel}`);
      handlers.set(channel, listener);
    },
    removeHandler(channel) {
      handlers.delete(channel);
    },
  };
}

describe('registerApi', () => {
  it('registers one handler per method under fedforward:<name>', async () => {
    const ipc = fakeIpcMain();
    registerApi(ipc, {
      version: async () => '1.2.3',
      add: async (a: number, b: number) => a + b,
    });
    expect(CHANNEL_PREFIX).toBe('fedforward:');
    expect([...ipc.handlers.keys()].sort()).toEqual(['fedforward:add', 'fedforward:version']);
    expect(await ipc.handlers.get('fedforward:version')!({}, [])).toBe('1.2.3');
    expect(await ipc.handlers.get('fedforward:add')!({}, [2, 3])).toBe(5);
  });

  it('rejects arguments that are not an array, without calling the method', async () => {
    const ipc = fakeIpcMain();
    const add = vi.fn(async (a: number, b: number) => a + b);
    registerApi(ipc, { add });
    const handler = ipc.handlers.get('fedforward:add')!;
    for (const bad of [undefined, null, 1, 'ab', { 0: 1, 1: 2, length: 2 }]) {
      await expect(handler({}, bad)).rejects.toThrow(/must be an array/);
    }
    await expect(handler({}, new Array(MAX_ARGS + 1).fill(0))).rejects.toThrow(/at most/);
    expect(add).not.toHaveBeenCalled();
  });

  it('passes errors of the method through as rejections', async () => {
    const ipc = fakeIpcMain();
    registerApi(ipc, {
      fail: async () => {
        throw new Error('boom');
      },
    });
    await expect(ipc.handlers.get('fedforward:fail')!({}, [])).rejects.toThrow('boom');
  });

  it('refuses method names that are not identifiers, registering nothing', () => {
    const ipc = fakeIpcMain();
    expect(() => registerApi(ipc, { ok: async () => 1, 'bad:name': async () => 2 })).toThrow(/invalid API method name/);
    expect(ipc.handlers.size).toBe(0);
  });

  it('returns an unregister function that removes every handler', () => {
    const ipc = fakeIpcMain();
    ipc.handle('other:channel', () => 0);
    const unregister = registerApi(ipc, { a: async () => 1, b: async () => 2 });
    expect(ipc.handlers.size).toBe(3);
    unregister();
    expect([...ipc.handlers.keys()]).toEqual(['other:channel']);
    unregister(); // idempotent
    // The same API can be registered again afterwards.
    registerApi(ipc, { a: async () => 1 });
    expect(ipc.handlers.has('fedforward:a')).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// src/main/app/index.ts under a mocked `electron` (the real binary cannot run here).

const electron = vi.hoisted(() => {
  const windows: FakeWindow[] = [];
  class FakeWindow {
    options: unknown;
    loaded: { file?: string; url?: string } = {};
    webContents = { setWindowOpenHandler: vi.fn(), on: vi.fn() };
    constructor(options: unknown) {
      this.options = options;
      windows.push(this);
    }
    once = vi.fn();
    on = vi.fn();
    show = vi.fn();
    focus = vi.fn();
    restore = vi.fn();
    isMinimized = vi.fn(() => false);
    loadFile = vi.fn(async (file: string) => {
      this.loaded.file = file;
    });
    loadURL = vi.fn(async (url: string) => {
      this.loaded.url = url;
    });
    static getAllWindows = vi.fn(() => windows);
  }
  const BrowserWindow = vi.fn(function (this: unknown, options: unknown) {
    return new FakeWindow(options);
  }) as unknown as typeof FakeWindow & ReturnType<typeof vi.fn>;
  (BrowserWindow as unknown as { getAllWindows: unknown }).getAllWindows = FakeWindow.getAllWindows;
  const appHandlers = new Map<string, (...args: unknown[]) => void>();
  const app = {
    isPackaged: false,
    requestSingleInstanceLock: vi.fn(() => true),
    whenReady: vi.fn(() => Promise.resolve()),
    on: vi.fn((name: string, fn: (...args: unknown[]) => void) => {
      appHandlers.set(name, fn);
      return app;
    }),
    quit: vi.fn(),
    exit: vi.fn(),
    getVersion: vi.fn(() => '0.1.0'),
    getPath: vi.fn((): string => { throw new Error('no userData in this test'); }),
  };
  const handlers = new Map<string, (...args: unknown[]) => unknown>();
  const ipcMain = {
    handle: vi.fn((channel: string, fn: (...args: unknown[]) => unknown) => handlers.set(channel, fn)),
    removeHandler: vi.fn((channel: string) => handlers.delete(channel)),
  };
  const onHeadersReceived = vi.fn();
  const setPermissionRequestHandler = vi.fn();
  const setPermissionCheckHandler = vi.fn();
  const session = { defaultSession: { webRequest: { onHeadersReceived }, setPermissionRequestHandler, setPermissionCheckHandler } };
  const shell = { openPath: vi.fn(async (_p: string) => '') };
  return { windows, BrowserWindow, app, appHandlers, ipcMain, handlers, session, onHeadersReceived, setPermissionRequestHandler, setPermissionCheckHandler, shell };
});

vi.mock('electron', () => ({
  app: electron.app,
  BrowserWindow: electron.BrowserWindow,
  ipcMain: electron.ipcMain,
  session: electron.session,
  shell: electron.shell,
  default: electron,
}));

describe('main/app/index.ts', () => {
  const savedUrl = process.env.ELECTRON_RENDERER_URL;
  beforeEach(() => {
    vi.resetModules();
    electron.windows.length = 0;
    electron.handlers.clear();
    electron.appHandlers.clear();
    vi.clearAllMocks();
    delete process.env.ELECTRON_RENDERER_URL;
  });
  afterEach(() => {
    if (savedUrl === undefined) delete process.env.ELECTRON_RENDERER_URL;
    else process.env.ELECTRON_RENDERER_URL = savedUrl;
  });

  async function importApp() {
    const mod = await import('../../src/main/app/index.ts');
    await vi.waitFor(() => expect(electron.windows.length).toBe(1));
    return mod;
  }

  it('creates one secure 1280x800 window with the built preload script', async () => {
    const mod = await importApp();
    expect(electron.BrowserWindow).toHaveBeenCalledTimes(1);
    const options = electron.windows[0]!.options as {
      width: number;
      height: number;
      webPreferences: { contextIsolation: boolean; nodeIntegration: boolean; sandbox: boolean; preload: string };
    };
    expect(options.width).toBe(1280);
    expect(options.height).toBe(800);
    expect(options.webPreferences.contextIsolation).toBe(true);
    expect(options.webPreferences.nodeIntegration).toBe(false);
    expect(options.webPreferences.sandbox).toBe(true);
    // electron.vite.config.ts emits the sandboxed preload as CommonJS: out/preload/index.cjs
    expect(options.webPreferences.preload.replaceAll('\\', '/')).toMatch(/\/preload\/index\.cjs$/);
    expect(mod.PRELOAD_PATH).toBe(options.webPreferences.preload);
    expect(electron.windows[0]!.loaded.file?.replaceAll('\\', '/')).toMatch(/\/renderer\/index\.html$/);
  });

  it('denies new windows and navigation', async () => {
    await importApp();
    const win = electron.windows[0]!;
    const openHandler = win.webContents.setWindowOpenHandler.mock.calls[0]![0] as () => { action: string };
    expect(openHandler()).toEqual({ action: 'deny' });
    const nav = win.webContents.on.mock.calls.find(([name]) => name === 'will-navigate')!;
    const event = { preventDefault: vi.fn() };
    (nav[1] as (e: typeof event) => void)(event);
    expect(event.preventDefault).toHaveBeenCalled();
  });

  it('cancels redirects as it cancels navigation', async () => {
    await importApp();
    const win = electron.windows[0]!;
    const redirect = win.webContents.on.mock.calls.find(([name]) => name === 'will-redirect');
    expect(redirect, 'a will-redirect guard').toBeDefined();
    const event = { preventDefault: vi.fn() };
    (redirect![1] as (e: typeof event) => void)(event);
    expect(event.preventDefault).toHaveBeenCalled();
  });

  it('denies every permission a page asks for', async () => {
    await importApp();
    expect(electron.setPermissionRequestHandler).toHaveBeenCalledTimes(1);
    const handler = electron.setPermissionRequestHandler.mock.calls[0]![0] as (wc: unknown, permission: string, cb: (granted: boolean) => void) => void;
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal', 'fullscreen']) {
      const cb = vi.fn();
      handler({}, permission, cb);
      expect(cb).toHaveBeenCalledWith(false);
    }
    const check = electron.setPermissionCheckHandler.mock.calls[0]![0] as (wc: unknown, permission: string) => boolean;
    expect(check({}, 'media')).toBe(false);
  });

  it('opens only the folder of an export of this peer, named by its id', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ff-app-'));
    try {
      electron.app.getPath.mockImplementation(() => dataDir);
      await importApp();
      const open = electron.handlers.get('fedforward:openExportFolder')!;
      const id = 'adapter-round-1-2026-01-01T00-00-00-000Z';
      await expect(open({}, ['../../etc'])).rejects.toThrow(/not an export/);
      await expect(open({}, [id])).rejects.toThrow(/no such export/);
      expect(electron.shell.openPath).not.toHaveBeenCalled();
      await mkdir(path.join(dataDir, 'exports', id), { recursive: true });
      expect(await open({}, [id])).toBe('');
      expect(electron.shell.openPath).toHaveBeenCalledWith(path.join(dataDir, 'exports', id));
    } finally {
      electron.app.getPath.mockReset();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('sets a strict Content-Security-Policy header on every response', async () => {
    await importApp();
    expect(electron.onHeadersReceived).toHaveBeenCalledTimes(1);
    const listener = electron.onHeadersReceived.mock.calls[0]![0] as (
      details: { responseHeaders?: Record<string, string[]> },
      cb: (r: { responseHeaders: Record<string, string[]> }) => void,
    ) => void;
    const cb = vi.fn();
    listener({ responseHeaders: { 'X-Other': ['1'] } }, cb);
    const headers = cb.mock.calls[0]![0].responseHeaders as Record<string, string[]>;
    expect(headers['X-Other']).toEqual(['1']);
    const csp = headers['Content-Security-Policy']![0]!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain("form-action 'none'");
    expect(csp).not.toContain("'unsafe-eval'");
    // the page's own meta tag carries the same policy
    const html = await readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/renderer/index.html'), 'utf8');
    expect(/content="([^"]+)"/.exec(html.slice(html.indexOf('Content-Security-Policy')))![1]).toBe(csp);
  });

  it('registers the version method on ipcMain', async () => {
    await importApp();
    const handler = electron.handlers.get('fedforward:version');
    expect(handler).toBeTypeOf('function');
    expect(await handler!({}, [])).toBe('0.1.0');
  });

  it('loads the dev server URL when ELECTRON_RENDERER_URL is set', async () => {
    process.env.ELECTRON_RENDERER_URL = 'http://localhost:5173/';
    await importApp();
    expect(electron.windows[0]!.loaded.url).toBe('http://localhost:5173/');
  });

  it('quits when all windows close, except on macOS', async () => {
    await importApp();
    const onAllClosed = electron.appHandlers.get('window-all-closed')!;
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    try {
      Object.defineProperty(process, 'platform', { value: 'linux' });
      onAllClosed();
      expect(electron.app.quit).toHaveBeenCalledTimes(1);
      Object.defineProperty(process, 'platform', { value: 'darwin' });
      onAllClosed();
      expect(electron.app.quit).toHaveBeenCalledTimes(1);
    } finally {
      Object.defineProperty(process, 'platform', platform);
    }
  });

  it('quits at once, without a window, when another instance holds the lock', async () => {
    electron.app.requestSingleInstanceLock.mockReturnValueOnce(false);
    await import('../../src/main/app/index.ts');
    await new Promise((r) => setTimeout(r, 10));
    expect(electron.app.quit).toHaveBeenCalledTimes(1);
    expect(electron.windows.length).toBe(0);
  });
});
