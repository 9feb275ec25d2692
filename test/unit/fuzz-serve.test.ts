// Issue 10 §7, the fuzz test: thousands of generated malformed payloads over every channel of the IPC
// contract, through the real serve entry (main/transports/serve/cli.ts in a child process, the HTTP bridge and the
// whole handler table on the tiny bundle). Every answer must be a clear error code of the contract (never
// `internal`, never a 5xx or a dropped connection), quote no file it was pointed at, and the server must
// still be up at the end; no file outside the server's temp folder may change.
//
// Confined: the server runs with a fresh temp working directory, HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME and
// TMPDIR; loopback only (127.0.0.1). Seeded: FT_FUZZ_SEED replays a run, and every failure names its seed
// and case index. Bounded: a fixed number of cases per channel, a few in flight at a time.
//
// Known failure when this test was written: a trace (trace.run/point/scope/prefetch/compare) in flight
// while bundle.open reopens a bundle answers `internal` ("the compute worker client has been disposed",
// "the request was cancelled"): Workbench.open disposes the engines those requests hold. The test keeps
// asserting that no answer is `internal`; it names the channel and payload when one is.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { dirname, extname, isAbsolute, join, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { channels, contract, type Channel, type ErrorCode, type RequestIn } from '../../common/contract'
import { BOUNDARY_NUMBERS, EXTREME_NUMBERS, mutate, rawBody, Rng, weirdString, weirdValue, type FieldValues } from './helpers/fuzz'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const TINY = join(ROOT, 'test/fixtures/tiny')
/**
 * Generated cases per channel: 27 channels × 230 = 6,210 requests, about 5,200 of them malformed, then ~340
 * hostile paths one at a time; 20–45 s in all on 2 shared cores.
 */
const PER_CHANNEL = Number(process.env.FT_FUZZ_PER_CHANNEL) || 230
const MIN_MALFORMED = Number(process.env.FT_FUZZ_PER_CHANNEL) ? 0 : 5000
const SEED = Number(process.env.FT_FUZZ_SEED) || 0x5eed_f022
const IN_FLIGHT = 6
const REQUEST_TIMEOUT_MS = 60_000
/** Fixed, so a failure can be replayed; 43 characters like a generated one. */
const TOKEN = 'FuzzServeToken_0123456789abcdefghijklmnopqr'.slice(0, 43)
/** Written into every canary file: no answer may ever contain it. */
const MARKER = 'CANARY-SECRET-7f3a'

/** The contract's ErrorCode values; the two type checks below fail if the union and this list ever differ. */
const ERROR_CODES = [
  'invalid_request',
  'unknown_channel',
  'not_found',
  'no_bundle',
  'bundle_invalid',
  'cache_missing',
  'cache_stale',
  'cache_corrupt',
  'cache_foreign',
  'busy',
  'session_corrupt',
  'session_future_version',
  'io',
  'unsupported',
  'internal',
] as const satisfies readonly ErrorCode[]
type MissingCode = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>
const everyCodeListed: [MissingCode] extends [never] ? true : MissingCode = true
/** The bridge's own refusals (main/transports/serve/server.ts), before a payload reaches dispatch. */
const BRIDGE_STATUSES = new Set([400, 413, 414, 415])

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

/** Every entry under `dir` without following links: type, mode, size, sha256 of files, link targets, folder mtimes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    const st = lstatSync(d)
    out[d] = `dir ${st.mode.toString(8)} mtime ${st.mtimeMs}`
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const s = lstatSync(p)
      if (s.isDirectory()) walk(p)
      else if (s.isSymbolicLink()) out[p] = `link -> ${readlinkSync(p)}`
      else if (s.isFile()) out[p] = `file ${s.mode.toString(8)} ${s.size} ${sha256(readFileSync(p))}`
      else out[p] = `${s.isFIFO() ? 'fifo' : 'other'} ${s.mode.toString(8)}`
    }
  }
  walk(dir)
  return out
}

/** Files outside every temp folder that a path traversal would reach first. */
function outsideFiles(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const p of ['/etc/passwd', '/etc/shadow', join(homedir(), '.bashrc'), join(homedir(), '.profile')]) {
    try {
      out[p] = sha256(readFileSync(p))
    } catch {
      out[p] = 'unreadable'
    }
  }
  return out
}

interface Canary {
  dir: string
  /** Hostile paths for a read (session.load, bundle.open, dialog defaultPath). */
  readPaths: string[]
  /** Hostile paths a session.save must refuse without writing anything. */
  savePaths: string[]
}

/** A folder outside the server's temp folder, holding everything a hostile path may point at. */
function makeCanary(userData: string): Canary {
  const dir = mkdtempSync(join(tmpdir(), 'ft-fuzz-canary-'))
  const secret = `${MARKER} root-ish secret line\n`
  writeFileSync(join(dir, 'notes.txt'), `my notes ${secret}`)
  writeFileSync(join(dir, 'notes.ftsession'), `not a session: ${secret}`)
  writeFileSync(join(dir, 'future.ftsession'), JSON.stringify({ format: 'feature-tracer-session', version: 99, note: secret }))
  writeFileSync(join(dir, 'truncated.ftsession'), JSON.stringify({ format: 'feature-tracer-session', version: 1, note: secret }).slice(0, 60))
  writeFileSync(join(dir, 'damaged.ftsession'), JSON.stringify({ format: 'feature-tracer-session', version: 1, savedAt: secret, bundle: { path: secret, hash: 1 }, state: { tabs: secret } }))
  writeFileSync(join(dir, 'bom.ftsession'), `\ufeff${secret}`)
  writeFileSync(join(dir, 'bundle.json'), secret)
  const db = new Database(join(dir, 'labels.sqlite'))
  db.exec(`CREATE TABLE annotation (bundle_hash TEXT NOT NULL, feature INTEGER NOT NULL, label TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL, PRIMARY KEY (bundle_hash, feature)) WITHOUT ROWID`)
  db.prepare('INSERT INTO annotation VALUES (?, ?, ?, ?, ?)').run('x'.repeat(64), 1, MARKER, secret, '2026-01-01')
  db.close()
  execFileSync('mkfifo', [join(dir, 'fifo')])
  execFileSync('mkfifo', [join(dir, 'pipe.ftsession')])
  symlinkSync('/etc/passwd', join(dir, 'passwd-link'))
  symlinkSync('/etc/passwd', join(dir, 'passwd-link.ftsession'))
  symlinkSync(join(dir, 'notes.txt'), join(dir, 'notes-link.ftsession'))
  mkdirSync(join(dir, 'dir.ftsession'))
  // Bundle folders that must be refused: bundle.json a link to /etc/passwd, garbage, a FIFO for weights.
  mkdirSync(join(dir, 'bundle-link'))
  symlinkSync('/etc/passwd', join(dir, 'bundle-link', 'bundle.json'))
  mkdirSync(join(dir, 'bundle-garbage'))
  writeFileSync(join(dir, 'bundle-garbage', 'bundle.json'), JSON.stringify({ format: 'feature-tracer-bundle', version: 1, name: secret, model: secret }))
  mkdirSync(join(dir, 'bundle-fifo'))
  for (const f of ['bundle.json', 'tokenizer.json', 'sae.safetensors', 'tokens.safetensors']) copyFileSync(join(TINY, f), join(dir, 'bundle-fifo', f))
  execFileSync('mkfifo', [join(dir, 'bundle-fifo', 'model.safetensors')])
  mkdirSync(join(dir, 'bundle-secret'))
  for (const f of ['bundle.json', 'model.safetensors', 'sae.safetensors', 'tokens.safetensors']) copyFileSync(join(TINY, f), join(dir, 'bundle-secret', f))
  writeFileSync(join(dir, 'bundle-secret', 'tokenizer.json'), secret)

  const long = `${dir}/${'a/'.repeat(2490)}x.ftsession`
  const savePaths = [
    // relative and home-relative: refused before anything is touched
    '../../../../etc/passwd',
    '../../x.ftsession',
    'x.ftsession',
    './x.ftsession',
    '~/.bashrc',
    '~/x.ftsession',
    '.',
    // absolute, another extension
    '/etc/passwd',
    '/etc/shadow',
    '/dev/zero',
    '/dev/null',
    '/proc/self/environ',
    join(dir, 'notes.txt'),
    join(dir, 'labels.sqlite'),
    join(dir, 'new.txt'),
    join(dir, 'passwd-link'),
    join(dir, 'fifo'),
    join(dir, 'x.FTSESSION'),
    join(dir, 'x.ftsession.tmp'),
    join(userData, 'labels.sqlite'),
    // existing, not a session of ours
    join(dir, 'notes.ftsession'),
    join(dir, 'future.ftsession'),
    join(dir, 'truncated.ftsession'),
    join(dir, 'damaged.ftsession'),
    join(dir, 'bom.ftsession'),
    join(dir, 'pipe.ftsession'),
    join(dir, 'passwd-link.ftsession'),
    join(dir, 'notes-link.ftsession'),
    join(dir, 'dir.ftsession'),
    // folders that do not exist
    '/nonexistent-ft-fuzz/x.ftsession',
    join(dir, 'nope', 'x.ftsession'),
    join(dir, 'notes.txt', 'x.ftsession'),
    join(dir, 'fifo', 'x.ftsession'),
    long,
    // NUL bytes, names too long, paths over the schema's 4096
    `${dir}/new\u0000.ftsession`,
    `/etc/passwd\u0000.ftsession`,
    `${join(dir, 'notes.ftsession')}\u0000`,
    `${dir}/${'n'.repeat(300)}.ftsession`,
    `${dir}/${'a'.repeat(5000)}.ftsession`,
    `/${'b'.repeat(5000)}`,
    // the app's own folder
    join(userData, 'x.ftsession'),
    join(userData, 'autosave', 'x.ftsession'),
  ]
  const readPaths = [
    ...savePaths,
    '/etc/passwd',
    '/etc/shadow',
    '/etc',
    '/',
    '/root',
    '/tmp',
    '/dev/zero',
    '/dev/urandom',
    '/dev/stdin',
    '/dev/tty',
    '/proc/self/environ',
    '/proc/self/cmdline',
    '/proc/self/maps',
    '/proc/self/cwd',
    '/proc/self/fd/0',
    '/proc/self/fd/1',
    dir,
    join(dir, 'bundle-link'),
    join(dir, 'bundle-garbage'),
    join(dir, 'bundle-fifo'),
    join(dir, 'bundle-secret'),
    join(dir, 'fifo'),
    join(dir, 'bundle.json'),
    join(dir, 'bundle-link', 'bundle.json'),
    join(dir, '%ZZ'),
    join(dir, 'ünï 😀\u202e.ftsession'),
    `${dir}/../${dir.split(sep).pop()}/notes.ftsession`,
    join(TINY, 'bundle.json'),
    join(TINY, 'model.safetensors'),
    `${TINY}/`,
    join(TINY, '..'),
    'file:///etc/passwd',
    'C:\\Windows\\win.ini',
  ]
  return { dir, readPaths, savePaths }
}

interface Server {
  proc: ChildProcess
  port: number
  log(): string
}

/** The serve entry as `npm run serve` runs it (tsx, main/transports/serve/cli.ts), confined to `root`. */
async function startServe(root: string, renderer: string): Promise<Server> {
  const cwd = join(root, 'cwd')
  const home = join(root, 'home')
  const temp = join(root, 'tmp')
  for (const d of [cwd, home, temp]) mkdirSync(d)
  // --import by file URL: a bare `tsx` would be resolved from the (empty) working directory.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const args = ['--import', tsx, join(ROOT, 'main/transports/serve/cli.ts'), '--bundle', TINY, '--port', '0']
  args.push('--cache', join(root, 'cache.sqlite'), '--user-data', join(root, 'user-data'), '--renderer', renderer)
  const proc = spawn(process.execPath, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      HOME: home,
      XDG_CACHE_HOME: join(home, '.cache'),
      XDG_CONFIG_HOME: join(home, '.config'),
      TMPDIR: temp,
      FT_SERVE_TOKEN: TOKEN,
    },
  })
  let out = ''
  proc.stdout!.on('data', (c) => (out += c))
  proc.stderr!.on('data', (c) => (out += c))
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 90_000)
    const check = () => {
      const m = /http:\/\/127\.0\.0\.1:(\d+)\/\?token=/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolvePort(Number(m[1]))
      }
    }
    proc.stdout!.on('data', check)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code}:\n${out}`))
    })
  })
  return { proc, port, log: () => out }
}

const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT })

function post(port: number, channel: string, body: Buffer, contentType: string | null): Promise<{ status: number; text: string }> {
  return new Promise((resolveRes, reject) => {
    const headers: Record<string, string | number> = { Authorization: `Bearer ${TOKEN}`, 'Content-Length': body.length }
    if (contentType !== null) headers['Content-Type'] = contentType
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: `/api/${channel}`, agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolveRes({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf-8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

const POINT = { feature: 1, sample: 0, pos: 3 }
const PROMPT_POINT = { feature: 2, prompt: 'hello world', token: 1 }

describe('fuzzing every channel through the HTTP bridge', () => {
  let root: string
  let canary: Canary
  let server: Server
  let sessions: string
  let userData: string
  let examples: { [C in Channel]: RequestIn<C>[] }
  let canaryBefore: Record<string, string>
  let tinyBefore: Record<string, string>
  let outsideBefore: Record<string, string>

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ft-fuzz-serve-'))
    userData = join(root, 'user-data')
    sessions = join(root, 'sessions')
    mkdirSync(sessions)
    const renderer = join(root, 'renderer')
    mkdirSync(renderer)
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>fuzz</title>')
    // A readable session of another bundle, for session.load to import from.
    const seedSession = { format: 'feature-tracer-session', version: 1, savedAt: '2026-01-01T00:00:00Z', bundle: { path: '/x', hash: 'f'.repeat(64) }, state: {}, labels: { 3: { label: 'l', notes: 'n' } } }
    writeFileSync(join(sessions, 'seed.ftsession'), JSON.stringify(seedSession))
    canary = makeCanary(userData)
    canaryBefore = snapshot(canary.dir)
    tinyBefore = snapshot(TINY)
    outsideBefore = outsideFiles()
    server = await startServe(root, renderer)

    const save = (name: string) => join(sessions, name)
    const tabs = { tabs: [{ id: 't1', kind: 'feature', feature: 3 }], activeTab: 't1', grids: { features: { sort: [] } }, ui: { theme: 'dark' } }
    examples = {
      'workbench.notices': [{}],
      'bundle.info': [{}],
      'bundle.open': [{ path: TINY }],
      'cache.status': [{}],
      'cache.build': [{ jobId: '00000000-0000-4000-8000-000000000001' }, { jobId: 'b1', rebuild: false }, { jobId: 'b2', rebuild: true }],
      'job.cancel': [{ jobId: '00000000-0000-4000-8000-000000000000' }, { jobId: 'x' }],
      'features.list': [{}],
      'feature.get': [{ id: 3 }, { id: 0, topK: 5 }, { id: 63, topK: 100 }],
      'feature.sequences': [{ feature: 3, samples: [0, 5] }, { feature: 0, samples: [23] }],
      'feature.histogram': [{ id: 3 }, { id: 1, bins: 10, scale: 'log' }],
      'features.byToken': [{ tokenId: 5 }, { tokenId: 0, limit: 10 }, { text: 'the' }, { text: ' a', limit: 3 }],
      'labels.set': [{ id: 3, label: 'a label' }, { id: 0, label: '' }],
      'notes.set': [{ id: 3, notes: 'some notes' }],
      'session.save': [{ path: save('s1.ftsession'), state: {} }, { path: save('s2.ftsession'), state: tabs }, { path: save('ünï 😀.ftsession'), state: { ui: { a: 1 } } }],
      'session.load': [{ path: save('seed.ftsession') }, { path: save('s1.ftsession') }, { path: save('s2.ftsession') }],
      'session.autosaved': [{}],
      'session.autosave': [{ state: {} }, { state: tabs }],
      'trace.run': [{ point: POINT }, { point: PROMPT_POINT, options: { topK: 5 } }],
      'trace.point': [{ point: POINT }, { point: PROMPT_POINT, options: { topK: 5, gridTokens: [1, 2] }, caller: 'tab-1' }],
      'trace.scope': [{ point: POINT, caller: 'tab-1' }, { point: PROMPT_POINT, rowLimit: 10 }],
      'trace.cancel': [{ caller: 'tab-1' }, { caller: 'nobody' }],
      'trace.prefetch': [{ samples: [0, 1] }, { samples: [23] }],
      'trace.prompt': [{ prompt: 'hello world' }, { prompt: 'abc', topK: 3, feature: 2 }],
      'trace.ablate': [{ point: POINT }, { point: PROMPT_POINT, terms: 3, mean: false, caller: 'tab-1' }],
      'trace.compare': [{ a: POINT, b: { feature: 1, sample: 1, pos: 4 } }, { a: POINT, b: PROMPT_POINT, convention: 'u', topK: 5 }],
      'trace.corpusScores': [{ jobId: 's1', point: POINT, scatterPoints: 100 }, { jobId: 's2', point: PROMPT_POINT, convention: 'u', rowLimit: 10, bins: 5 }],
      'trace.corpusScores.result': [{ jobId: '00000000-0000-4000-8000-000000000000' }, { jobId: 'x' }],
      'trace.atlas': [{ jobId: 'a1', feature: 0, top: 4, quantileSamples: 2 }, { jobId: 'a2', feature: 1, top: 0, quantileSamples: 3, topK: 3 }],
      'trace.atlas.result': [{ jobId: '00000000-0000-4000-8000-000000000000' }, { jobId: 'x' }],
      'dialog.open': [{ target: 'bundle' }, { target: 'session', title: 't', defaultPath: '/tmp' }],
      'dialog.save': [{ target: 'csv' }, { target: 'session', defaultPath: save('x.ftsession') }],
    }
  }, 180_000)

  afterAll(async () => {
    agent.destroy()
    const proc = server?.proc
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r))
      proc.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
      if (proc.exitCode === null) proc.kill('SIGKILL')
    }
    if (root) rmSync(root, { recursive: true, force: true })
    if (canary) rmSync(canary.dir, { recursive: true, force: true })
  })

  it('has a valid example for every channel of the contract, and lists every ErrorCode', () => {
    expect(everyCodeListed).toBe(true)
    expect(Object.keys(examples).sort()).toEqual([...channels].sort())
    for (const c of channels) {
      expect(examples[c].length).toBeGreaterThan(0)
      for (const ex of examples[c]) expect(contract[c].request.safeParse(ex).success, `${c} ${JSON.stringify(ex)}`).toBe(true)
    }
  })

  it(`answers ${PER_CHANNEL} generated payloads per channel with clear error codes, and changes nothing outside its temp folder`, async () => {
    /** True when a session.save to `p` cannot write outside the server's temp folder (refused before any write). */
    const saveIsConfined = (p: string): boolean => {
      if (!isAbsolute(p) || extname(p) !== '.ftsession' || p.includes('\u0000') || p.length > 4096) return true
      if (resolve(p).startsWith(root + sep)) return true
      if (!existsSync(dirname(p))) return true
      try {
        lstatSync(p)
        return resolve(p).startsWith(canary.dir + sep) // exists: only canary files, none of them a session
      } catch (e) {
        // A name too long, or a "folder" that is a file: the write fails too. A free name would be created.
        return ['ENAMETOOLONG', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')
      }
    }
    const fieldValue: FieldValues = (key, rng) => {
      switch (key) {
        case 'path':
        case 'defaultPath':
          return rng.chance(0.8) ? rng.pick(canary.readPaths) : undefined
        case 'id':
        case 'feature':
        case 'tokenId':
        case 'sample':
        case 'pos':
        case 'token':
        case 'topK':
        case 'bins':
        case 'limit':
        case 'rowLimit':
        case 'scatterPoints':
        case 'sourcePos':
        case 'head':
          return rng.chance(0.6) ? rng.pick(BOUNDARY_NUMBERS) : rng.pick(EXTREME_NUMBERS)
        case 'gridTokens':
        case 'samples':
          return Array.from({ length: rng.pick([0, 1, 2, 64, 65, 1000]) }, () => rng.pick(rng.chance(0.7) ? BOUNDARY_NUMBERS : EXTREME_NUMBERS))
        case 'label':
        case 'notes':
        case 'prompt':
        case 'text':
        case 'jobId':
        case 'caller':
        case 'title':
        case 'activeTab':
          return weirdString(rng)
        case 'scale':
        case 'convention':
        case 'target':
        case 'vocabRows':
        case 'kind':
          return rng.pick(['LOG', 'linear ', 'w', 'bundle', 'csv', 'all', 'top', 'TOP', '', 'u\u0000', 'session', weirdString(rng)])
        case 'state':
        case 'grids':
        case 'ui':
        case 'options':
          return rng.chance(0.5) ? weirdValue(rng) : JSON.parse(rng.pick(['{"tabs":"x"}', '{"tabs":[{"id":1}]}', '{"grids":[]}', '{"__proto__":{"tabs":[]}}', '{"topK":0}', '{"vocabRows":"all","rowLimit":10000,"topK":1000}']))
        default:
          return undefined
      }
    }

    type Case = { channel: Channel; kind: 'example' | 'hostile' | 'mutated' | 'raw'; body: Buffer; contentType: string | null; malformed: boolean; hostilePath: boolean }
    const hostile = new Set(canary.readPaths)
    const makeCase = (index: number): Case => {
      const channel = channels[index % channels.length]
      const rng = Rng.of(SEED, index)
      const example = rng.pick(examples[channel] as unknown[])
      const roll = rng.next()
      let c: Case
      const json = 'application/json'
      const pathKey = channel.startsWith('dialog.') ? 'defaultPath' : 'path' in (example as object) ? 'path' : null
      if (roll < 0.07) c = { channel, kind: 'example', body: Buffer.from(JSON.stringify(example)), contentType: json, malformed: false, hostilePath: false }
      else if (roll < 0.15) c = { channel, kind: 'raw', ...rawBody(rng, example), malformed: true, hostilePath: false }
      else if (pathKey && roll < 0.5) {
        // A valid payload but for one hostile path: what the handler itself must refuse.
        const hostileCase = { ...(example as object), [pathKey]: rng.pick(channel === 'session.save' ? canary.savePaths : canary.readPaths) }
        c = { channel, kind: 'hostile', body: Buffer.from(JSON.stringify(hostileCase)), contentType: json, malformed: true, hostilePath: true }
      } else c = { channel, kind: 'mutated', body: Buffer.from(JSON.stringify(mutate(example, rng, fieldValue)) ?? ''), contentType: json, malformed: true, hostilePath: false }
      let parsed: unknown
      let isJson = true
      try {
        parsed = c.body.length === 0 ? undefined : JSON.parse(c.body.toString('utf-8'))
      } catch {
        isJson = false
      }
      // A session.save that could write outside the temp folder is never sent: it gets a hostile path instead.
      if (channel === 'session.save' && isJson && parsed !== null && typeof parsed === 'object' && typeof (parsed as { path?: unknown }).path === 'string') {
        if (!saveIsConfined((parsed as { path: string }).path)) {
          Object.defineProperty(parsed, 'path', { value: rng.pick(canary.savePaths), enumerable: true, writable: true, configurable: true })
          c.body = Buffer.from(JSON.stringify(parsed))
        }
      }
      const fields = isJson && parsed !== null && typeof parsed === 'object' ? (parsed as { path?: unknown; defaultPath?: unknown }) : {}
      c.hostilePath = hostile.has(fields.path as string) || hostile.has(fields.defaultPath as string)
      // Malformed: a hostile path, not JSON, not sent as JSON, or refused by the channel's schema.
      c.malformed = c.hostilePath || !isJson || !(c.contentType ?? '').startsWith('application/json') || !contract[channel].request.safeParse(parsed === undefined ? {} : parsed).success
      return c
    }

    for (const p of canary.savePaths) expect(saveIsConfined(p), JSON.stringify(p)).toBe(true)
    const total = PER_CHANNEL * channels.length
    const sent = new Map<string, { cases: number; malformed: number; hostilePaths: number; slowestMs: number }>()
    const outcomes = new Map<string, number>()
    const failures: string[] = []
    let failureCount = 0
    const internals = new Map<string, string[]>()
    const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
    const fail = (index: number, c: Case, why: string, body = '') => {
      failureCount++
      if (failures.length < 30) {
        failures.push(`case ${index} (seed ${SEED}) ${c.channel} [${c.kind}] body ${JSON.stringify(c.body.toString('utf-8').slice(0, 200))}: ${why} ${body.slice(0, 300)}`)
      }
    }

    const check = (index: number, c: Case, status: number, text: string) => {
      for (const leak of [MARKER, 'root:x:0:0', TOKEN]) if (text.includes(leak)) fail(index, c, `the answer contains ${leak === TOKEN ? 'the token' : JSON.stringify(leak)}`, text)
      let body: { ok?: unknown; value?: unknown; error?: { code?: unknown; message?: unknown } }
      try {
        body = JSON.parse(text)
      } catch {
        count(`${status} not-json`)
        return fail(index, c, `status ${status}, the body is not JSON`, text)
      }
      if (status === 200 && body.ok === true && 'value' in body) return count('200 ok')
      const code = body.error?.code
      const message = body.error?.message
      count(`${status} ${String(code)}`)
      if (status !== 200 && !BRIDGE_STATUSES.has(status)) return fail(index, c, `status ${status}`, text)
      if (body.ok !== false || typeof code !== 'string' || typeof message !== 'string') return fail(index, c, 'not an error envelope', text)
      if (message.length > 1000) fail(index, c, `a message of ${message.length} characters`)
      if (status !== 200) return // the bridge's own codes (bad_request, content_type…)
      if (!(ERROR_CODES as readonly string[]).includes(code)) return fail(index, c, `code ${code} is not an ErrorCode`, text)
      if (code === 'internal') {
        const list = internals.get(c.channel) ?? []
        if (list.length < 5) list.push(`case ${index}: ${c.body.toString('utf-8').slice(0, 300)} → ${message}`)
        internals.set(c.channel, list)
        fail(index, c, 'code internal (a handler bug)', text)
      }
    }

    /** Sends one case and checks its answer; resolves with the answer's envelope (null when there is none). */
    const send = async (index: number, c: Case): Promise<{ ok?: unknown; error?: { code?: unknown } } | null> => {
      const s = sent.get(c.channel) ?? { cases: 0, malformed: 0, hostilePaths: 0, slowestMs: 0 }
      s.cases++
      if (c.malformed) s.malformed++
      if (c.hostilePath) s.hostilePaths++
      sent.set(c.channel, s)
      const t0 = Date.now()
      try {
        const { status, text } = await post(server.port, c.channel, c.body, c.contentType)
        s.slowestMs = Math.max(s.slowestMs, Date.now() - t0)
        check(index, c, status, text)
        return JSON.parse(text)
      } catch (e) {
        if (!(e instanceof SyntaxError)) {
          count('dropped')
          fail(index, c, `no answer: ${(e as Error).message}`)
        }
        return null
      }
    }

    // Phase 1: generated cases, a few in flight, every channel in turn.
    const started = Date.now()
    let next = 0
    const worker = async () => {
      while (next < total) {
        const index = next++
        await send(index, makeCase(index))
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))

    // Phase 2: every hostile path once in every path field, one request at a time, with no cache build
    // running (a build makes bundle.open answer `busy` before it looks at the path). None may succeed but
    // the tiny bundle itself, none may say `busy`, and none may block (a FIFO, a device).
    const call = async (channel: Channel, payload: unknown) => JSON.parse((await post(server.port, channel, Buffer.from(JSON.stringify(payload)), 'application/json')).text)
    const state = await call('cache.status', {})
    if (state.value?.job?.jobId) await call('job.cancel', { jobId: state.value.job.jobId })
    for (let i = 0; i < 600 && (await call('cache.status', {})).value?.state === 'building'; i++) await new Promise((r) => setTimeout(r, 200))
    const idleCases: [Channel, Record<string, unknown>, string[]][] = [
      ['bundle.open', {}, canary.readPaths],
      ['session.load', {}, canary.readPaths],
      ['session.save', { state: { ui: { note: 'x' } } }, canary.savePaths],
      ['dialog.open', { target: 'bundle' }, canary.readPaths],
      ['dialog.save', { target: 'session' }, canary.readPaths],
    ]
    let idleCount = 0
    for (const [channel, rest, paths] of idleCases) {
      const key = channel.startsWith('dialog.') ? 'defaultPath' : 'path'
      for (const path of paths) {
        const index = total + idleCount++
        const body = Buffer.from(JSON.stringify({ ...rest, [key]: path }))
        const c: Case = { channel, kind: 'hostile', body, contentType: 'application/json', malformed: true, hostilePath: true }
        if (channel === 'session.save' && !saveIsConfined(path)) throw new Error(`not sent, it could write outside the temp folder: ${path}`)
        const t0 = Date.now()
        const answer = await send(index, c)
        if (Date.now() - t0 > 15_000) fail(index, c, `answered after ${Date.now() - t0} ms`)
        if (!answer) continue
        const opensTiny = channel === 'bundle.open' && resolve(path) === TINY
        if (answer.ok !== opensTiny) fail(index, c, opensTiny ? 'the tiny bundle did not open' : 'a hostile path was accepted')
        if (answer.error?.code === 'busy') fail(index, c, 'busy with no job running')
      }
    }
    const elapsed = (Date.now() - started) / 1000

    // The server is still up and answers as before.
    expect(server.proc.exitCode, server.log().slice(-2000)).toBe(null)
    const info = await post(server.port, 'bundle.info', Buffer.from('{}'), 'application/json')
    expect(info.status).toBe(200)
    const infoBody = JSON.parse(info.text)
    expect(infoBody.ok, info.text.slice(0, 500)).toBe(true)
    expect(infoBody.value.sae.d_sae).toBe(64)
    expect(infoBody.value.path).toBe(TINY)

    const malformed = [...sent.values()].reduce((n, s) => n + s.malformed, 0)
    console.log(
      [
        `fuzz-serve: seed ${SEED}, ${total + idleCount} requests (${malformed} malformed): ${total} generated (${IN_FLIGHT} in flight), then ${idleCount} hostile paths one at a time; ${elapsed.toFixed(1)} s`,
        'per channel (cases / malformed / hostile paths / slowest answer):',
        ...channels.map((ch) => {
          const s = sent.get(ch)
          return `  ${ch.padEnd(28)} ${s?.cases ?? 0} / ${s?.malformed ?? 0} / ${s?.hostilePaths ?? 0} / ${s?.slowestMs ?? 0} ms`
        }),
        'answers (status code → count):',
        ...[...outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${k.padEnd(32)} ${n}`),
        `failures: ${failureCount}`,
        ...[...internals.entries()].flatMap(([ch, list]) => [`internal on ${ch}:`, ...list.map((l) => `  ${l}`)]),
      ].join('\n'),
    )

    // Soft: the checks of the files below still run, and report, when an answer failed.
    expect.soft(failures, `${failureCount} failures (seed ${SEED})`).toEqual([])
    for (const ch of channels) expect(sent.get(ch)?.cases ?? 0).toBeGreaterThanOrEqual(Math.min(100, PER_CHANNEL))
    expect(total).toBeGreaterThanOrEqual(MIN_MALFORMED)
    expect(malformed).toBeGreaterThanOrEqual(MIN_MALFORMED)

    // Nothing outside the temp folder changed, and nothing landed in the server's working directory.
    expect(snapshot(canary.dir)).toEqual(canaryBefore)
    expect(snapshot(TINY)).toEqual(tinyBefore)
    expect(outsideFiles()).toEqual(outsideBefore)
    expect(readdirSync(join(root, 'cwd'))).toEqual([])
  }, 300_000)
})
