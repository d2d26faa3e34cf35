#!/usr/bin/env node
// Entry for `npx fedforward`: the command line is TypeScript run by Node's own type stripping (Node >= 22.18 / 24).
import '../src/main/cli/index.ts';
