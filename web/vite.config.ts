import { defineConfig } from 'vite';

// The dashboard is served by the Switchboard binary itself (web/dist is embedded with
// rust-embed). `npm run dev` proxies the API and the socket to a running server.
declare const process: { env: Record<string, string | undefined> };
const target = process.env.SWITCHBOARD_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // One small bundle: nothing to split on a dashboard this size.
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
    // Two pages: the agents' dashboard and the customer portal (issue #18), sharing nothing but the build.
    rollupOptions: { input: { index: 'index.html', portal: 'portal.html' } },
  },
  server: {
    proxy: {
      '/api': { target, ws: true, changeOrigin: false },
      '/portal/api': target,
      '/healthz': target,
    },
  },
});
