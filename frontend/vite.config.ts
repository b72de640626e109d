/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Node's `process` (typed here so no @types/node dependency is needed).
declare const process: { env: Record<string, string | undefined> };

// The API (and its websocket) run on the Python side; `npm run dev` proxies them.
const apiTarget = process.env.CIDASH_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  // Relative asset URLs: dist/ can be served at `/` or under any prefix.
  base: './',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/api': { target: apiTarget, changeOrigin: true, ws: true },
    },
  },
  // Tests run svelte's client runtime in jsdom.
  resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    restoreMocks: true,
    // The first App test mounts the whole dashboard (2.5 s alone); a busy 2-core machine doubles it.
    testTimeout: 30_000,
  },
});
