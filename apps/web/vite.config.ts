import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The IDE is served by the Vaporform server from dist/ (same origin as /api). Monaco and xterm
// are imported dynamically, so they land in their own chunks and load on first use; Monaco's
// workers are bundled through `?worker` imports (no CDN). Vite 8 bundles with Rolldown: the whole
// build takes ~11 s on a 2-core machine (Vite 7 with Rollup: 2.5 min), which is most of the
// first `npm start` on a fresh clone.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    sourcemap: false,
    // Monaco's chunks are large by nature: the per-plugin timing report is noise on every start.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  worker: { format: 'es' },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:4000', ws: true },
      '/openapi.json': 'http://127.0.0.1:4000',
    },
  },
});
