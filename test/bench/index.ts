// `npm run bench [-- --bundle DIR]`: the trace, corpus-scores and cache benchmarks, one after the other,
// each in its own process (each reports its figures as ratios against a baseline measured in the same run).
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const bundle = args.includes('--bundle') ? [] : ['--bundle', join(here, '..', '..', 'resources', 'demo')]
let failed = false
for (const script of ['trace.ts', 'corpus.ts', 'cache.ts']) {
  process.stdout.write(`\n== ${script} ==\n`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, script), ...bundle, ...args], { stdio: 'inherit' })
  failed ||= r.status !== 0
}
process.exit(failed ? 1 : 0)
