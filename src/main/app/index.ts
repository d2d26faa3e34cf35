/**
 * The Electron app shell: the only module in src/main that imports `electron`.
 * One window, sandboxed renderer, strict Content-Security-Policy, single instance.
 * The peer's API reaches the renderer through registerApi (./ipc.ts) and the preload bridge.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, ipcMain, session, shell } from 'electron';
import { registerApi } from './ipc.ts';
import { openPeerApi, type PeerApiImpl } from '../api/peer_api.ts';
import { deferredApi } from '../api/validate.ts';
import { exportDir } from '../api/exports.ts';
import { EVENT_CHANNEL, type BridgeEventMessage } from '../../shared/bridge.ts';
import { CONTENT_SECURITY_POLICY } from '../../shared/csp.ts';


// Built layout: out/main/index.js, out/preload/index.cjs, out/renderer/index.html.
const here = fileURLToPath(new URL('.', import.meta.url));
export const PRELOAD_PATH = join(here, '../preload/index.cjs');
export const RENDERER_HTML = join(here, '../renderer/index.html');

let mainWindow: BrowserWindow | null = null;
let peerApi: PeerApiImpl | null = null;

export function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    title: 'FedForward',
    show: false,
    webPreferences: {
      preload: PRELOAD_PATH,
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
      webSecurity: true,
    },
  });
  win.once('ready-to-show', () => win.show());
  // The renderer never opens windows or navigates away from the app.
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (event) => event.preventDefault());
  win.webContents.on('will-redirect', (event) => event.preventDefault());
  win.on('closed', () => {
    if (mainWindow === win) mainWindow = null;
  });

  const devUrl = process.env.ELECTRON_RENDERER_URL;
  if (!app.isPackaged && devUrl) void win.loadURL(devUrl);
  else void win.loadFile(RENDERER_HTML);
  mainWindow = win;
  return win;
}

function start(): void {
  // The app needs no camera, microphone, notifications, geolocation or anything else a page may ask for.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({
      responseHeaders: {
        ...details.responseHeaders,
        'Content-Security-Policy': [CONTENT_SECURITY_POLICY],
      },
    });
  });
  // The peer of this installation: its data directory is Electron's userData. The handlers are
  // registered at once; calls that need the peer wait for it to open.
  const ready = Promise.resolve().then(() =>
    openPeerApi(app.getPath('userData'), (event, payload) => {
      const message: BridgeEventMessage = { event, payload };
      for (const win of BrowserWindow.getAllWindows()) if (!win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, message);
    }),
  );
  ready.then(
    (api) => {
      peerApi = api;
      if (api.peer.settings !== null) void api.start().catch((e: unknown) => console.error('fedforward: cannot start the peer:', e));
    },
    (e: unknown) => console.error('fedforward: cannot open the peer:', e instanceof Error ? e.message : e),
  );
  registerApi(
    ipcMain,
    deferredApi(ready, {
      version: async () => app.getVersion(),
      // only a folder of this peer's exports, named by its id: the renderer never passes a path
      openExportFolder: async (id) => {
        const dir = await exportDir((await ready).peer.dir.exportsDir, String(id));
        if (dir === null) throw new Error('no such export');
        return shell.openPath(dir);
      },
    }),
  );
  app.on('before-quit', () => {
    peerApi?.close();
    void peerApi?.peer.stop();
  });
  createWindow();
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
  app
    .whenReady()
    .then(start)
    .catch((error: unknown) => {
      console.error('fedforward: failed to start:', error);
      app.exit(1);
    });
}
