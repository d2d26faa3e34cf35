// Figures as people read them.
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : v < 10 ? 2 : 1)} ${units[i]}`;
}

export function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(digits)} %`;
}

export function num(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

/** "in 3 h", "in 12 min", "expired" */
export function until(ts: number, now = Date.now()): string {
  const s = Math.round((ts - now) / 1000);
  if (s <= 0) return 'expired';
  if (s < 90) return `in ${s} s`;
  if (s < 5400) return `in ${Math.round(s / 60)} min`;
  if (s < 172_800) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86_400)} days`;
}

export const PHASE_TEXT: Record<string, string> = {
  'no-federation': 'not in a federation',
  stopped: 'stopped',
  loading: 'loading the model',
  'waiting-for-members': 'waiting for members',
  training: 'training locally',
  collecting: 'aggregating the round',
  finished: 'all rounds done',
};

export const ROLE_TEXT: Record<string, string> = {
  leader: 'aggregator',
  follower: 'member',
  candidate: 'in an election',
  stopped: 'stopped',
};
