import { defineConfig } from 'vite'

// Cross-origin isolation (COOP/COEP) lets onnxruntime-web run multi-threaded wasm; the page says which.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }

export default defineConfig({
  base: './', // the static build works from any folder of any static server
  server: { headers: isolation },
  preview: { headers: isolation },
  // onnxruntime-web locates its .wasm with new URL(..., import.meta.url), which Vite emits as an asset;
  // its dependency optimizer would break that, so it stays away from the package.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', modulePreload: { polyfill: false }, chunkSizeWarningLimit: 2000 },
})
