#!/usr/bin/env node
// The `feature-tracer` command. In a clone with devDependencies it runs the TypeScript sources through tsx
// (so it is never a stale build); where tsx is not installed (`npm ci --omit=dev`, `npm prune --omit=dev`)
// it runs the build's out/main/cli.js (`npm run build`). FT_CLI_BUILT=1 forces the build.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const built = join(root, 'out', 'main', 'cli.js')
const sources = join(root, 'main', 'transports', 'cli', 'index.ts')

async function tsx() {
  if (process.env.FT_CLI_BUILT === '1' || !existsSync(sources)) return null
  try {
    return await import('tsx/esm/api')
  } catch {
    return null // no devDependencies
  }
}

let entry = built
const api = await tsx()
if (api) {
  api.register()
  entry = sources
} else if (!existsSync(built)) {
  process.stderr.write('feature-tracer: no build found (out/main/cli.js) and no tsx to run the sources; run `npm run build` first\n')
  process.exit(2)
}
const cli = await import(pathToFileURL(entry).href)
cli.run(process.argv.slice(2))
