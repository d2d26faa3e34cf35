// Shared test data (real model weights with known outputs) lives beside the repository, at
// ../shared/fixtures; tests that need it must skip, not pass, when it is absent.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'fixtures');

export const HAS_FIXTURES = existsSync(FIXTURES);
