// The embedded default model: a small GPT-2 this project pretrains itself (scripts/pretrain.ts) and
// commits under models/embedded, with its model card.
import { fileURLToPath } from 'node:url';

export const EMBEDDED_MODEL_DIR = fileURLToPath(new URL('../../../models/embedded', import.meta.url));

/** "embedded" names the bundled model; anything else is a directory on disk. */
export const resolveModelDir = (model: string): string => (model === 'embedded' ? EMBEDDED_MODEL_DIR : model);
