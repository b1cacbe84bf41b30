// The console is static files the admin server serves from --console-dir
// (docs/admin.md, "Web console"). Relative asset paths keep it working
// wherever the directory is mounted; no inline script or style is emitted,
// so the server's Content-Security-Policy (default-src 'self') holds.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One script and one stylesheet; the module preload helper is bundled, not inlined.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` against an admin server on its default address.
    proxy: { '/api': { target: 'https://127.0.0.1:8443', secure: false } },
  },
});
