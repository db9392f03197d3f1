/**
 * Vite build of the web console (scripts/console-build.ts runs it). The output goes to
 * console/dist (git-ignored) and is served by `gatehouse serve` at /console
 * (src/server/console-static.ts) under a CSP without 'unsafe-inline', so the build must emit
 * no inline script or style: module preload polyfill off, CSS in files.
 */
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  plugins: [react()],
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
