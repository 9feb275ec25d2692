// The CLI runs from the build alone (issue 11 §8): an install of the built app with its devDependencies
// pruned (`npm prune --omit=dev`: no tsx, no TypeScript sources' toolchain) builds a cache, lists the
// features and traces a point, with the same answers as the sources. node_modules is hard-linked into a
// temp folder (its .package-lock.json copied, since npm rewrites it), so pruning never touches the real one.
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, TINY } from './helpers/cache'

const ROOT = resolve('.')
const SLOW = 300_000

function withoutNpmConfig(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k, v]) => !/^npm_/i.test(k) && v !== undefined)) as Record<string, string>
}

function run(cwd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(cwd, 'bin/feature-tracer.mjs'), ...args], {
    cwd,
    encoding: 'utf-8',
    env: { ...process.env, ...env },
    timeout: 240_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('the built CLI without devDependencies', () => {
  let app: string
  let work: string

  beforeAll(() => {
    if (!existsSync(join(ROOT, 'out/main/cli.js'))) {
      const b = spawnSync(process.execPath, [join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'], { cwd: ROOT, stdio: 'ignore' })
      expect(b.status).toBe(0)
    }
    work = tempDir('ft-built-')
    app = join(work, 'app')
    mkdirSync(app)
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) copyFileSync(join(ROOT, f), join(app, f))
    cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true })
    cpSync(join(ROOT, 'out'), join(app, 'out'), { recursive: true })
    // Hard links: instant, and npm prune only unlinks them; the lock file npm rewrites is a real copy.
    const cp = spawnSync('cp', ['-al', join(ROOT, 'node_modules'), join(app, 'node_modules')])
    expect(cp.status).toBe(0)
    // npm's hidden lock file, which prune rewrites: a real copy (when there is one), never a link.
    const hidden = join(ROOT, 'node_modules/.package-lock.json')
    rmSync(join(app, 'node_modules/.package-lock.json'), { force: true })
    if (existsSync(hidden)) copyFileSync(hidden, join(app, 'node_modules/.package-lock.json'))
    const prune = spawnSync('npm', ['prune', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--offline'], {
      cwd: app,
      encoding: 'utf-8',
      // Without the npm_config_* of the npm that started the tests (npx/npm run pass theirs on).
      env: { ...withoutNpmConfig(process.env), ONNXRUNTIME_NODE_INSTALL: 'skip', ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
      timeout: 240_000,
    })
    expect(prune.status, prune.stderr).toBe(0)
  }, SLOW)
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it('has no devDependencies and no sources, and still builds a cache, lists features and traces', () => {
    expect(existsSync(join(app, 'node_modules/tsx'))).toBe(false)
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false)
    expect(existsSync(join(app, 'node_modules/electron-vite'))).toBe(false)
    expect(existsSync(join(app, 'main'))).toBe(false)
    expect(existsSync(join(ROOT, 'node_modules/tsx'))).toBe(true) // the real install is untouched
    const env = { XDG_CACHE_HOME: join(work, 'xdg'), FEATURE_TRACER_USER_DATA: join(work, 'user') }
    const bundle = resolve(TINY)
    const cache = join(work, 'cache.sqlite')
    const built = run(app, ['cache', 'build', '--bundle', bundle, '--cache', cache], env)
    expect(built.code, built.stderr).toBe(0)
    const features = run(app, ['features', '--bundle', bundle, '--cache', cache, '--json'], env)
    expect(features.code, features.stderr).toBe(0)
    const trace = run(app, ['trace', '--bundle', bundle, '--feature', '5', '--sample', '1', '--pos', '6', '--json'], env)
    expect(trace.code, trace.stderr).toBe(0)
    // The same answers as the TypeScript sources give.
    const fromSources = (args: string[]) => run(ROOT, args, env).stdout
    expect(features.stdout).toBe(fromSources(['features', '--bundle', bundle, '--cache', cache, '--json']))
    expect(JSON.parse(trace.stdout).v).toEqual(JSON.parse(fromSources(['trace', '--bundle', bundle, '--feature', '5', '--sample', '1', '--pos', '6', '--json'])).v)
  }, SLOW)
})
