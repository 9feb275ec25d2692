// `npm run bench [-- --bundle DIR]`: the trace, causal-checks (ablation.ts), corpus-scores and cache benchmarks (with the A/B of progressive builds), one after the other,
// then what bounds the build's compute (gemm.ts: the encoder's product in PyTorch and ORT),
// each in its own process (each reports its figures as ratios against a baseline measured in the same run),
// the atlas benchmark, a click's responsiveness in Chromium (responsiveness.ts: the browser e2e), then the memory benchmark:
// serve's whole process tree in use, as a multiple of the fp32 weights, on a
// gelu-1l-shaped bundle (made once by tools/make_shaped_bundle.py into .cache/gelu1l, not committed).
// `npm run bench -- --shapes`: only the real-size benchmark (shapes.ts) on gelu-1l's and GPT-2 small's shapes,
// each bundle made once into .cache/ (about a minute and 0.5 / 0.8 GB each; GPT-2 small's takes many minutes
// to benchmark on 2 cores, its batches' forward passes and cache build above all).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const args = process.argv.slice(2)
let failed = false
const run = (script: string, scriptArgs: string[]): void => {
  process.stdout.write(`\n== ${script} ${scriptArgs.join(' ')} ==\n`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, script), ...scriptArgs], { stdio: 'inherit' })
  failed ||= r.status !== 0
}
/** .cache/<shape>, made by tools/make_shaped_bundle.py if it is not there. */
const shaped = (shape: 'gelu1l' | 'gpt2small'): string => {
  const dir = join(root, '.cache', shape)
  if (!existsSync(join(dir, 'bundle.json'))) {
    process.stdout.write(`\nmaking the ${shape}-shaped bundle in ${dir} (tools/make_shaped_bundle.py)\n`)
    const made = spawnSync('/usr/bin/python3', [join(root, 'tools', 'make_shaped_bundle.py'), dir, '--shape', shape], { stdio: 'inherit' })
    failed ||= made.status !== 0
  }
  return dir
}

if (args.includes('--shapes')) {
  const rest = args.filter((a) => a !== '--shapes')
  // GPT-2 small's whole corpus would take 3–10 minutes to build on 2 cores, and as long again in PyTorch: its rate from 8,192 tokens.
  run('shapes.ts', ['--bundle', shaped('gelu1l'), ...rest])
  run('shapes.ts', ['--bundle', shaped('gpt2small'), '--build-tokens', '8192', ...rest])
  process.exit(failed ? 1 : 0)
}

const bundle = args.includes('--bundle') ? [] : ['--bundle', join(root, 'resources', 'demo')]
// The cache benchmark also measures what progressive builds cost (--ab): two ABBA rounds over the corpus's first 131,072 tokens.
const abArgs = ['--ab', '2', '--ab-tokens', '131072']
for (const script of ['trace.ts', 'ablation.ts', 'corpus.ts', 'cache.ts', 'atlas.ts']) run(script, [...bundle, ...(script === 'cache.ts' ? abArgs : []), ...args])
// A click in Chromium: the trace header and the batch's grid on screen after main's answers (the browser e2e).
run('responsiveness.ts', [...bundle, ...args])

const gelu1l = args.includes('--bundle') ? '' : shaped('gelu1l')
run('memory.ts', args.includes('--bundle') ? args : ['--bundle', gelu1l])
// The atlas at gelu-1l's shape: no cache there, so computeAtlas alone (test/bench/atlas.ts --direct).
if (!args.includes('--bundle')) run('atlas.ts', ['--bundle', gelu1l, '--direct'])
// The build at gelu-1l's shape, beside its baselines (finalize's goal, issue 13: ≤ 2 s; the logit step
// apart), finalize alone three times (wall and CPU time), then what progressive builds cost there (all of
// its 32,768 tokens, two ABBA rounds).
if (!args.includes('--bundle')) run('cache.ts', ['--bundle', gelu1l, '--finalize', '3', '--ab', '2'])
// What bounds the build's compute: the encoder's product in PyTorch and in ORT, and the SAE tail, alternating.
for (const b of args.includes('--bundle') ? [args] : [bundle, ['--bundle', gelu1l]]) run('gemm.ts', b)
process.exit(failed ? 1 : 0)
