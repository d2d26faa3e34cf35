// The page follows the system's light or dark scheme (app.css); canvas charts read the same
// custom properties and redraw when the scheme changes.
const FALLBACK: Record<string, string> = { '--chart-text': '#374151', '--chart-grid': '#e5e7eb' };

export function themeColor(name: string): string {
  if (typeof document === 'undefined') return FALLBACK[name] ?? '#6b7280';
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || (FALLBACK[name] ?? '#6b7280');
}

/** Calls `cb` when the system switches between light and dark; returns the unsubscribe. */
export function onThemeChange(cb: () => void): () => void {
  if (typeof matchMedia !== 'function') return () => {};
  const q = matchMedia('(prefers-color-scheme: dark)');
  q.addEventListener('change', cb);
  return () => q.removeEventListener('change', cb);
}
