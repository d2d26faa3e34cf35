// The demo's organisations and their private data: each one's own mail, as the file a real member
// would bring to `fedforward join --task FILE`.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadBuiltinTask } from '../worker/data/builtin.ts';
import { dirichletSplit } from '../worker/data/split.ts';
import { writeFileAtomic } from '../shared/atomic_write.ts';

export const ORGS = ['clinic', 'bank', 'school'] as const;
/** subject lines per organisation, a third of them held out for testing */
export const PER_ORG = 600;
export const TRAIN_FRACTION = 2 / 3;

/**
 * Each organisation's own mail, as the data file a real member would bring: PER_ORG distinct
 * subject lines of the SpamAssassin corpus, about half of them spam, no line given to two organisations.
 */
export async function writeMailFiles(dir: string): Promise<string[]> {
  const ds = loadBuiltinTask('spam');
  const shares = dirichletSplit(ds, { clients: ORGS.length, alpha: 1e6, seed: 0, perClient: PER_ORG });
  await mkdir(dir, { recursive: true });
  return Promise.all(
    shares.map(async (share, i) => {
      const file = path.join(dir, `${ORGS[i]}.jsonl`);
      const rows = [...share.train, ...share.test].map((e) => JSON.stringify({ text: e.text, label: ds.labels[e.label] }));
      await writeFileAtomic(file, `${rows.join('\n')}\n`);
      return file;
    }),
  );
}
