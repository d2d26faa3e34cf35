// The embedded default model: a small GPT-2 this project pretrains itself (scripts/pretrain.ts) and
// commits under models/embedded, with its model card.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// From the sources (src/worker/models/) or from the bundled app (out/main/).
const CANDIDATES = ['../../../models/embedded', '../../models/embedded'].map((p) => fileURLToPath(new URL(p, import.meta.url)));

export const EMBEDDED_MODEL_DIR = CANDIDATES.find((d) => existsSync(d)) ?? CANDIDATES[0];

/** "embedded" names the bundled model; anything else is a directory on disk. */
export const resolveModelDir = (model: string): string => (model === 'embedded' ? EMBEDDED_MODEL_DIR : model);
