#!/usr/bin/env node
// The `feature-tracer` command. From a clone (after `npm ci`, no build step) it runs the TypeScript
// sources through tsx, a devDependency; a build that emitted out/cli/index.js is used when present.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const built = join(root, 'out', 'cli', 'index.js')
let entry = built
if (!existsSync(built)) {
  const { register } = await import('tsx/esm/api')
  register()
  entry = join(root, 'main', 'transports', 'cli', 'index.ts')
}
const cli = await import(pathToFileURL(entry).href)
cli.run(process.argv.slice(2))
