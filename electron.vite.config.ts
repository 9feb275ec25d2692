import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'electron-vite'
import vue from '@vitejs/plugin-vue'

const root = dirname(fileURLToPath(import.meta.url))

export default defineConfig({
  main: {
    build: {
      // Native modules cannot be bundled: they load a .node binary next to their JS. better-sqlite3's
      // binary for Electron's ABI comes from `npm run electron:native` in a checkout (main/native/) and
      // from electron-builder's rebuild in the installers (electron-builder.yml); onnxruntime-node is
      // N-API and loads as installed. Every other dependency is externalized too (the default).
      externalizeDeps: { include: ['better-sqlite3', 'onnxruntime-node'] },
      rollupOptions: {
        input: {
          index: resolve(root, 'main/index.ts'),
          // The command line (bin/feature-tracer.mjs runs out/main/cli.js when it exists), so an install
          // without devDependencies (no tsx) runs it too.
          cli: resolve(root, 'main/transports/cli/index.ts'),
          // The compute host (ONNX Runtime for traces, and each long job) runs in processes of its own,
          // started from compute-host.js next to the bundled main (main/app/compute.ts looks for it there).
          'compute-host': resolve(root, 'main/app/compute-host.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      // A sandboxed preload is run by Electron's own loader, which can neither import ESM nor require
      // anything but 'electron' and a few built-ins, so it is one self-contained CommonJS file.
      externalizeDeps: false,
      rollupOptions: {
        input: { index: resolve(root, 'preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'renderer'),
    plugins: [vue()],
    build: {
      rollupOptions: {
        input: { index: resolve(root, 'renderer/index.html') },
      },
    },
  },
})
