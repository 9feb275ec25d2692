// `feature-tracer serve`: the loopback bridge (main/serve) over this CLI's workbench, until Ctrl-C.
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServer } from '../serve/server'
import type { Workbench } from '../ipc/workbench'

/** electron-vite's renderer output, at the repository root. */
function rendererDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../out/renderer')
}

export async function serveFromCli(wb: Workbench, opts: { bundleDir?: string; port: number }): Promise<number> {
  const dir = rendererDir()
  if (!existsSync(join(dir, 'index.html'))) {
    process.stderr.write(`feature-tracer: no built renderer in ${dir}; run \`npm run build\` first\n`)
    return 1
  }
  const server = await startServer({
    bundleDir: opts.bundleDir,
    port: opts.port,
    dispatch: wb.dispatch,
    subscribe: (listener) => wb.subscribe((event, payload) => listener(event, payload)),
    rendererDir: dir,
  })
  process.stdout.write(`Feature Tracer at ${server.url} (Ctrl-C stops)\n`)
  await new Promise<void>((done) => process.once('SIGINT', () => done()))
  await server.close()
  await wb.close()
  return 0
}
