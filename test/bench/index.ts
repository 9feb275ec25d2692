// `npm run bench [-- --bundle DIR]`: the trace, causal-checks (ablation.ts), corpus-scores and cache benchmarks, one after the other,
// each in its own process (each reports its figures as ratios against a baseline measured in the same run),
// the atlas benchmark, then the memory benchmark: serve's whole process tree in use, as a multiple of the fp32 weights, on a
// gelu-1l-shaped bundle (made once by tools/make_gelu1l_bundle.py into .cache/gelu1l, not committed).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const args = process.argv.slice(2)
const bundle = args.includes('--bundle') ? [] : ['--bundle', join(root, 'resources', 'demo')]
let failed = false
const run = (script: string, scriptArgs: string[]): void => {
  process.stdout.write(`\n== ${script} ==\n`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, script), ...scriptArgs], { stdio: 'inherit' })
  failed ||= r.status !== 0
}
for (const script of ['trace.ts', 'ablation.ts', 'corpus.ts', 'cache.ts', 'atlas.ts']) run(script, [...bundle, ...args])

const gelu1l = join(root, '.cache', 'gelu1l')
if (!existsSync(join(gelu1l, 'bundle.json')) && !args.includes('--bundle')) {
  process.stdout.write(`\nmaking the gelu-1l-shaped bundle in ${gelu1l} (tools/make_gelu1l_bundle.py)\n`)
  const made = spawnSync('/usr/bin/python3', [join(root, 'tools', 'make_gelu1l_bundle.py'), gelu1l], { stdio: 'inherit' })
  failed ||= made.status !== 0
}
run('memory.ts', args.includes('--bundle') ? args : ['--bundle', gelu1l])
// The atlas at gelu-1l's shape: no cache there, so computeAtlas alone (test/bench/atlas.ts --direct).
if (!args.includes('--bundle')) run('atlas.ts', ['--bundle', gelu1l, '--direct'])
process.exit(failed ? 1 : 0)
