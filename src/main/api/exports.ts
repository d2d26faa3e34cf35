// The history of exports: the finished folders in DATA_DIR/exports (an export writes into a hidden
// ".name.partial-…" folder and renames it into place, so a listed folder is complete), and the one
// way a download may reach a file there.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ExportId, type ExportRecord } from '../../shared/api.ts';

const NAME = /^(adapter|merged)-round-(\d+)-/;
const MAX_LISTED = 200;

export async function listExports(exportsDir: string): Promise<ExportRecord[]> {
  let names: string[];
  try {
    names = await readdir(exportsDir);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw e;
  }
  const out: ExportRecord[] = [];
  for (const id of names) {
    const m = NAME.exec(id);
    if (!m || !ExportId.safeParse(id).success) continue;
    const dir = path.join(exportsDir, id);
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) continue;
      const files: ExportRecord['files'] = [];
      for (const f of (await readdir(dir)).sort()) {
        const fs = await stat(path.join(dir, f));
        if (fs.isFile()) files.push({ name: f, bytes: fs.size });
      }
      out.push({ id, round: Number(m[2]), merged: m[1] === 'merged', dir, files, at: st.mtimeMs });
    } catch {
      continue; // removed while listing
    }
  }
  return out.sort((a, b) => b.at - a.at).slice(0, MAX_LISTED);
}

/** The path of file `name` of export `id`, or null when that is not a file of a finished export. */
export async function exportFile(exportsDir: string, id: string, name: string): Promise<string | null> {
  if (!ExportId.safeParse(id).success || !NAME.test(id) || !ExportId.safeParse(name).success) return null;
  const file = path.join(exportsDir, id, name);
  try {
    return (await stat(file)).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** The folder of export `id`, or null. */
export async function exportDir(exportsDir: string, id: string): Promise<string | null> {
  if (!ExportId.safeParse(id).success || !NAME.test(id)) return null;
  const dir = path.join(exportsDir, id);
  try {
    return (await stat(dir)).isDirectory() ? dir : null;
  } catch {
    return null;
  }
}
