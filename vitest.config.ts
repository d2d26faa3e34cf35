import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  // Svelte components and .svelte.ts stores (test/renderer); other files are left alone.
  plugins: [svelte()],
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      // everything but the renderer, exactly as before
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['test/renderer/**', '**/node_modules/**'] } },
      // the renderer's units and components: Svelte's browser build (mount) where a file asks for a DOM
      { extends: true, resolve: { conditions: ['browser'] }, test: { name: 'renderer', include: ['test/renderer/**/*.test.ts'] } },
    ],
  },
});
