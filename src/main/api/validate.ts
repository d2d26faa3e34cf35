// Every call into the peer's API is checked against its schema (src/shared/api.ts) on receipt,
// whichever transport brought it (Electron IPC or the serve WebSocket).
import { API_METHODS, isApiMethod, parseArgs, type ApiMethodName, type PeerApi } from '../../shared/api.ts';

export type ValidatedApi = Record<ApiMethodName, (...args: unknown[]) => Promise<unknown>>;

/** The API with each method's arguments parsed (defaults filled in) before the implementation runs. */
export function validatedApi(impl: PeerApi): ValidatedApi {
  const out = {} as ValidatedApi;
  for (const m of API_METHODS) {
    out[m] = async (...args: unknown[]) => {
      const parsed = parseArgs(m, args) as unknown[];
      return (impl[m] as (...a: unknown[]) => Promise<unknown>).apply(impl, parsed);
    };
  }
  return out;
}

/** Calls `method` with `args`; rejects with a one-line Error for an unknown method or bad arguments. */
export async function dispatch(api: ValidatedApi, method: unknown, args: unknown[]): Promise<unknown> {
  if (!isApiMethod(method)) throw new Error(`unknown method "${String(method).slice(0, 64)}"`);
  return api[method](...args);
}

export function oneLineError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n')[0] ?? '').slice(0, 500) || 'failed';
}

/**
 * The validated API over an implementation that is still being opened (the desktop shell registers
 * its handlers at once; the peer's data directory opens beside the window). `overrides` answer
 * without it (version). A failed open makes every other call fail with its reason.
 */
export function deferredApi(ready: Promise<PeerApi>, overrides: Partial<Record<ApiMethodName, (...args: unknown[]) => Promise<unknown>>> = {}): ValidatedApi {
  const out = {} as ValidatedApi;
  for (const m of API_METHODS) {
    const own = overrides[m];
    out[m] = async (...args: unknown[]) => {
      const parsed = parseArgs(m, args) as unknown[];
      if (own) return own(...parsed);
      let impl: PeerApi;
      try {
        impl = await ready;
      } catch (e) {
        throw new Error(`the peer could not open its data directory: ${oneLineError(e)}`);
      }
      return (impl[m] as (...a: unknown[]) => Promise<unknown>).apply(impl, parsed);
    };
  }
  return out;
}
