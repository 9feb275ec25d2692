// Issue 10's bad inputs through the real handler table, each confined to a temp folder: session paths that
// must be refused, files that are not what they claim (FIFOs, folders, links to secrets, BOMs, huge
// sparse files), unreadable autosaves and labels moved aside, corrupt and foreign caches, NaN weights and
// changed files under an unchanged bundle.json. After each case, every input file is byte-identical.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleError, loadBundle } from '../../main/bundle'
import { HashCache } from '../../main/bundle/hash-cache'
import { unwrap } from '../../main/app/dispatch'
import type { Workbench } from '../../main/app/workbench'
import { SESSION_VERSION } from '../../main/session/file'
import { pokeF32 } from './helpers/safetensors-edit'
import { LabelStore } from '../../main/session/labels'
import { build, tempDir, TINY, tinyWorkbench } from './helpers/cache'

const SECRET = 'root:*:20223:0:99999:7::: secret-line'
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex')

/** Every file under `dir` with its sha256, to prove a case changed nothing it was given. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, name.name)
      if (name.isDirectory()) walk(p)
      else if (name.isFile()) out[p] = sha(p)
    }
  }
  walk(dir)
  return out
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path])
}

async function errorOf(p: Promise<{ ok: boolean; error?: { code: string; message: string } }>): Promise<{ code: string; message: string }> {
  const r = await p
  expect(r.ok).toBe(false)
  return r.error!
}

describe('session paths and files', () => {
  let dir: string
  let wb: Workbench
  let inputs: string

  beforeAll(async () => {
    dir = tempDir('ft-harden-')
    wb = tinyWorkbench(dir)
    inputs = join(dir, 'inputs')
    mkdirSync(inputs)
    writeFileSync(join(inputs, 'notes.txt'), 'my notes, not a session')
    writeFileSync(join(inputs, 'secret.ftsession'), SECRET)
    writeFileSync(join(inputs, 'future.ftsession'), JSON.stringify({ format: 'feature-tracer-session', version: SESSION_VERSION + 1, x: 1 }))
    symlinkSync(join(inputs, 'notes.txt'), join(inputs, 'link.ftsession'))
    mkfifo(join(inputs, 'fifo.ftsession'))
    mkdirSync(join(inputs, 'folder.ftsession'))
  })
  afterAll(async () => wb?.close())

  it.each([
    ['a relative path', 'work.ftsession', /relative/],
    ['a traversal path', '../../../../etc/passwd', /relative/],
    ['another extension', '/ABS/notes.txt', /end in \.ftsession/],
    ['a file that is not a session', '/ABS/secret.ftsession', /not a session file/],
    ['a future-version session', '/ABS/future.ftsession', /newer Feature Tracer/],
    ['a symbolic link', '/ABS/link.ftsession', /symbolic link/],
    ['a FIFO', '/ABS/fifo.ftsession', /not a file/],
    ['a folder', '/ABS/folder.ftsession', /not a file/],
    ['a missing folder', '/ABS/no-such-dir/x.ftsession', /does not exist/],
  ])('session.save refuses %s and changes nothing', async (_what, path, message) => {
    const before = snapshot(dir)
    const err = await errorOf(wb.invoke('session.save', { path: path.replace('/ABS', inputs), state: {} }))
    expect(err.message).toMatch(message)
    expect(err.message).not.toContain('root:')
    expect(snapshot(dir)).toEqual(before)
  })

  it('never writes into the app folder, not even over its own labels file', async () => {
    const labels = join(dir, 'user', 'labels.sqlite')
    const before = sha(labels)
    for (const path of [join(dir, 'user', 'labels.ftsession'), join(dir, 'user', 'autosave', 'x.ftsession')]) {
      mkdirSync(dirname(path), { recursive: true })
      const err = await errorOf(wb.invoke('session.save', { path, state: {} }))
      expect(err.message).toMatch(/own folder/)
      expect(existsSync(path)).toBe(false)
    }
    expect(sha(labels)).toBe(before)
  })

  it('replaces a session file of its own, and writes a new one', async () => {
    const path = join(inputs, 'mine.ftsession')
    unwrap(await wb.invoke('session.save', { path, state: {} }))
    unwrap(await wb.invoke('session.save', { path, state: { activeTab: 'features' } }))
    expect(JSON.parse(readFileSync(path, 'utf-8')).state.activeTab).toBe('features')
  })

  it.each([
    ['a file of other content', 'secret.ftsession', 'session_corrupt'],
    ['a FIFO (without blocking)', 'fifo.ftsession', 'invalid_request'],
    ['a folder', 'folder.ftsession', 'invalid_request'],
  ])('session.load refuses %s, quoting none of it', async (_what, name, code) => {
    const before = snapshot(dir)
    const started = Date.now()
    const err = await errorOf(wb.invoke('session.load', { path: join(inputs, name) }))
    expect(Date.now() - started).toBeLessThan(5000)
    expect(err.code).toBe(code)
    expect(err.message).toContain(join(inputs, name))
    expect(err.message).not.toContain('root:')
    expect(err.message).not.toContain('secret-line')
    expect(snapshot(dir)).toEqual(before)
  })

  it('refuses a file over the size cap from its fstat, before reading it', async () => {
    const huge = join(inputs, 'huge.ftsession')
    writeFileSync(huge, '{')
    truncateSync(huge, 300 * 1024 * 1024) // sparse: costs no disk
    const err = await errorOf(wb.invoke('session.load', { path: huge }))
    expect(err.message).toMatch(/300\.0 MiB, more than/)
  })

  it('refuses a relative path to load, and caps every message however long the path', async () => {
    expect((await errorOf(wb.invoke('session.load', { path: 'x.ftsession' }))).message).toMatch(/relative/)
    const long = `/${'a'.repeat(4000)}.ftsession`
    const err = await errorOf(wb.invoke('session.load', { path: long }))
    expect(err.message.length).toBeLessThan(400)
    const tooLong = await errorOf(wb.invoke('session.load', { path: `/${'b'.repeat(1_000_000)}` }))
    expect(tooLong.code).toBe('invalid_request')
    expect(tooLong.message.length).toBeLessThan(1000)
  })

  it('reads a session file that starts with a UTF-8 byte-order mark', async () => {
    const path = join(inputs, 'mine.ftsession')
    const bom = join(inputs, 'bom.ftsession')
    writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(path)]))
    expect(unwrap(await wb.invoke('session.load', { path: bom })).session.state.activeTab).toBe('features')
  })
})

describe('labels', () => {
  it('imports from a session only the ids the SAE has', async () => {
    const dir = tempDir('ft-labels-')
    const wb = tinyWorkbench(dir)
    const info = unwrap(await wb.invoke('bundle.info', {}))
    const labels: Record<string, { label: string; notes: string }> = {}
    for (const id of [0, 5, info.sae.d_sae - 1, info.sae.d_sae, 1000, 99_999]) labels[String(id)] = { label: `l${id}`, notes: '' }
    const path = join(dir, 'ids.ftsession')
    const session = { format: 'feature-tracer-session', version: 1, savedAt: 'now', bundle: { path: info.path, hash: info.hash }, state: {}, labels }
    writeFileSync(path, JSON.stringify(session))
    const value = unwrap(await wb.invoke('session.load', { path }))
    expect(value).toMatchObject({ labelsImported: 3, labelsSkipped: 3 })
    expect([...wb.labels.all(info.hash).keys()].sort((a, b) => a - b)).toEqual([0, 5, info.sae.d_sae - 1])
    await wb.close()
  })

  it('imports 200k labels in batches: other work runs between them, and a label typed meanwhile is kept', async () => {
    const store = new LabelStore(join(tempDir('ft-labels-'), 'labels.sqlite'))
    const entries: Record<string, { label: string; notes: string }> = {}
    for (let i = 0; i < 200_000; i++) entries[String(i)] = { label: `imported ${i}`, notes: i % 2 ? 'n' : '' }
    let ticks = 0
    let importing = true
    const typed = (async () => {
      while (importing) {
        await new Promise((r) => setImmediate(r))
        ticks++
        if (ticks === 3) store.setLabel('h', 150_000, 'typed meanwhile')
      }
    })()
    const r = await store.importMissing('h', entries, 200_000)
    importing = false
    await typed
    expect(ticks).toBeGreaterThanOrEqual(50) // 100 batches of 2,000: the loop ran between them
    expect(store.get('h', 150_000)).toEqual({ label: 'typed meanwhile', notes: '' })
    expect(store.get('h', 199_999)).toEqual({ label: 'imported 199999', notes: 'n' })
    expect(r).toEqual({ copied: 200_000 - 1 + 100_000, skipped: 0 })
    store.close()
  }, 60_000)

  it('moves a corrupt labels file aside at start, says so, and starts with a fresh one', async () => {
    const dir = tempDir('ft-labels-')
    mkdirSync(join(dir, 'user'), { recursive: true })
    const garbage = Buffer.from('this is not a database '.repeat(300))
    writeFileSync(join(dir, 'user', 'labels.sqlite'), garbage)
    const wb = tinyWorkbench(dir)
    const { notices } = unwrap(await wb.invoke('workbench.notices', {}))
    expect(notices).toHaveLength(1)
    const to = notices[0].movedAside!.to
    expect(notices[0].message).toContain(to)
    expect(readFileSync(to)).toEqual(garbage)
    unwrap(await wb.invoke('labels.set', { id: 2, label: 'works' }))
    await wb.close()
  })
})

describe('caches', () => {
  let dir: string
  let good: string

  beforeAll(async () => {
    dir = tempDir('ft-cache-')
    const wb = tinyWorkbench(dir)
    expect((await build(wb)).outcome).toBe('done')
    await wb.close()
    good = join(dir, 'cache.sqlite')
  }, 120_000)

  const withCache = (prepare: (path: string) => void) => {
    const d = tempDir('ft-cachecase-')
    prepare(join(d, 'cache.sqlite'))
    return { d, wb: tinyWorkbench(d) }
  }

  it.each([
    ['garbage', (p: string) => writeFileSync(p, Buffer.from('garbage! '.repeat(1000)))],
    ['a truncated cache', (p: string) => writeFileSync(p, readFileSync(good).subarray(0, Math.floor(statSync(good).size / 3)))],
    ['a half-zeroed cache', (p: string) => {
      const b = Buffer.from(readFileSync(good))
      b.fill(0, 0, 100)
      writeFileSync(p, b)
    }],
  ])('%s is state corrupt; info, prompts and traces still answer; a build moves it aside and recovers', async (_what, prepare) => {
    const { d, wb } = withCache(prepare)
    const path = join(d, 'cache.sqlite')
    const bytes = readFileSync(path)
    const status = unwrap(await wb.invoke('cache.status', {}))
    expect(status.state).toBe('corrupt')
    expect(status.reason).toBeTruthy()
    expect(unwrap(await wb.invoke('bundle.info', {})).cache.state).toBe('corrupt')
    expect((await errorOf(wb.invoke('features.list', {}))).code).toMatch(/cache_corrupt|cache_missing/)
    expect(unwrap(await wb.invoke('trace.point', { point: { feature: 1, sample: 0, pos: 3 } })).feature).toBe(1)
    const done = await build(wb)
    expect(done.outcome).toBe('done')
    expect(done.cache.state).toBe('ready')
    const moved = readdirSync(d).find((n) => n.includes('.unreadable-') && n.endsWith('.sqlite'))!
    expect(readFileSync(join(d, moved))).toEqual(bytes)
    expect(unwrap(await wb.invoke('features.list', {})).features).toHaveLength(64)
    await wb.close()
  }, 120_000)

  it('does not claim ready for a finished cache that lacks feature rows, and rebuilds it', async () => {
    const { wb } = withCache((p) => {
      cpSync(good, p)
      const db = new Database(p)
      db.exec('DELETE FROM feature WHERE id >= 10')
      db.close()
    })
    const status = unwrap(await wb.invoke('cache.status', {}))
    expect(status.state).toBe('corrupt')
    expect(status.reason).toMatch(/holds 10 of the SAE's 64 features/)
    expect((await build(wb)).cache.state).toBe('ready')
    expect(unwrap(await wb.invoke('features.list', {})).features).toHaveLength(64)
    await wb.close()
  }, 120_000)

  it.each([
    ['tables named like ours and its own meta', "CREATE TABLE feature (x); CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('owner', 'someone else')"],
    ['a table of ours by name and no meta', 'CREATE TABLE feature (x); INSERT INTO feature VALUES (1)'],
    ['tables of its own', "CREATE TABLE feature (x); CREATE TABLE meta (key, value); CREATE TABLE mine (y)"],
  ])('never touches another program\'s SQLite file (%s) at the cache path, even on rebuild', async (_what, ddl) => {
    const { d, wb } = withCache((p) => {
      const db = new Database(p)
      db.exec(ddl)
      db.close()
    })
    const path = join(d, 'cache.sqlite')
    const before = sha(path)
    expect(unwrap(await wb.invoke('cache.status', {})).state).toBe('foreign')
    for (const rebuild of [false, true]) {
      const err = await errorOf(wb.invoke('cache.build', { jobId: `job-${rebuild}`, rebuild }))
      expect(err.code).toBe('cache_foreign')
      expect(err.message).toContain(path)
    }
    expect((await errorOf(wb.invoke('features.list', {}))).code).toBe('cache_foreign')
    await wb.close()
    expect(sha(path)).toBe(before)
    expect(readdirSync(d).filter((n) => n.startsWith('cache.sqlite'))).toEqual(['cache.sqlite'])
  })
})

describe('bundles', () => {
  const root = tempDir('ft-bundles-')
  let n = 0
  const copy = (edit: (d: string) => void): string => {
    const d = join(root, `b${n++}`)
    cpSync(TINY, d, { recursive: true })
    edit(d)
    return d
  }
  const loadError = async (d: string): Promise<BundleError> => {
    const before = snapshot(d)
    const err = await loadBundle(d).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(BundleError)
    expect(snapshot(d)).toEqual(before)
    return err as BundleError
  }
  /** Writes `value` into element `index` of an F32 tensor of the copy's model.safetensors. */
  const poke = (d: string, file: string, tensor: string, index: number, value: number) => pokeF32(join(d, file), tensor, index, value)

  it.each([
    ['model.safetensors', 'embed.W_E', 33, NaN, 'NaN at index [1, 1]'],
    ['model.safetensors', 'blocks.1.mlp.W_in', 5, Infinity, 'Infinity at index [0, 5]'],
    ['sae.safetensors', 'W_enc', 64 * 3 + 2, -Infinity, '-Infinity at index [3, 2]'],
    ['sae.safetensors', 'W_dec', 0, NaN, 'NaN at index [0, 0]'],
  ])('refuses a non-finite weight in %s %s, naming the tensor and index', async (file, tensor, index, value, where) => {
    const err = await loadError(copy((d) => poke(d, file, tensor, index, value)))
    expect(err.code).toBe('non-finite')
    expect(err.message).toContain(tensor)
    expect(err.message).toContain(where)
  })

  it('refuses weights changed under an unchanged bundle.json (its sha256 no longer matches)', async () => {
    const err = await loadError(copy((d) => poke(d, 'model.safetensors', 'embed.W_E', 7, 0.125)))
    expect(err.code).toBe('hash-mismatch')
    expect(err.file).toBe('model.safetensors')
  })

  it('keys the cache by the verified hashes: changed weights with no recorded hashes make it stale', async () => {
    const d = copy((b) => {
      const cfg = JSON.parse(readFileSync(join(b, 'bundle.json'), 'utf-8'))
      cfg.provenance.files = {}
      writeFileSync(join(b, 'bundle.json'), JSON.stringify(cfg))
    })
    const work = tempDir('ft-key-')
    const wb = tinyWorkbench(work, { bundleDir: d })
    expect((await build(wb)).cache.state).toBe('ready')
    await wb.close()
    poke(d, 'model.safetensors', 'embed.W_E', 7, 0.125)
    const again = tinyWorkbench(work, { bundleDir: d })
    const status = unwrap(await again.invoke('cache.status', {}))
    expect(status.state).toBe('stale')
    expect(status.reason).toMatch(/model\.safetensors sha256 differs/)
    await again.close()
  }, 120_000)

  it('quotes no content of a file bundle.json links to, and never blocks on a FIFO', async () => {
    const secret = join(root, 'shadow')
    writeFileSync(secret, SECRET)
    const linked = await loadError(
      copy((d) => {
        writeFileSync(join(d, 'bundle.json.real'), '')
        execFileSync('rm', [join(d, 'bundle.json')])
        symlinkSync(secret, join(d, 'bundle.json'))
      }),
    )
    expect(linked.code).toBe('bad-json')
    expect(linked.message).not.toContain('root')
    const fifo = await loadError(
      copy((d) => {
        execFileSync('rm', [join(d, 'tokenizer.json')])
        mkfifo(join(d, 'tokenizer.json'))
      }),
    )
    expect(fifo.code).toBe('unreadable')
    expect(fifo.message).toMatch(/tokenizer\.json .* is not a regular file \(a FIFO\)/)
  })

  it('hashes a file once per change: a second open with the same size, mtime and inode reads the remembered hash', () => {
    const cacheDir = tempDir('ft-hashes-')
    const file = resolve(TINY, 'sae.safetensors')
    const st = statSync(file)
    const bytes = readFileSync(file)
    const first = new HashCache(cacheDir)
    expect(first.sha256(file, st, bytes)).toBe(sha(file))
    first.save()
    // Other bytes under the same stat: the remembered hash comes back, so nothing was hashed.
    expect(new HashCache(cacheDir).sha256(file, st, Buffer.from('x'))).toBe(sha(file))
    // A changed mtime is a change: hashed again.
    const touched = { ...st, mtimeMs: st.mtimeMs + 1 } as typeof st
    expect(new HashCache(cacheDir).sha256(file, touched, Buffer.from('x'))).toBe(createHash('sha256').update('x').digest('hex'))
  })
})

describe('traces', () => {
  it('answers a trace whose engine is replaced mid-run (bundle.open) with busy, never internal', async () => {
    const wb = tinyWorkbench(tempDir())
    const info = unwrap(await wb.invoke('bundle.info', {}))
    const runs = [
      wb.invoke('trace.run', { point: { feature: 1, sample: 0, pos: 3 } }),
      wb.invoke('trace.compare', { a: { feature: 1, sample: 0, pos: 3 }, b: { feature: 1, sample: 1, pos: 4 } }),
    ]
    await new Promise((r) => setTimeout(r, 50))
    unwrap(await wb.invoke('bundle.open', { path: info.path }))
    for (const r of await Promise.all(runs)) {
      if (!r.ok) expect(r.error.code).toBe('busy')
    }
    expect(unwrap(await wb.invoke('trace.point', { point: { feature: 1, sample: 0, pos: 3 } })).feature).toBe(1)
    await wb.close()
  })

  it('refuses grid tokens outside the vocabulary instead of answering NaN', async () => {
    const wb = tinyWorkbench(tempDir())
    const info = unwrap(await wb.invoke('bundle.info', {}))
    for (const channel of ['trace.point', 'trace.run'] as const) {
      const err = await errorOf(wb.invoke(channel, { point: { feature: 1, sample: 0, pos: 4 }, options: { gridTokens: [1, info.model.d_vocab] } }))
      expect(err.code).toBe('invalid_request')
      expect(err.message).toContain(`grid token id ${info.model.d_vocab}`)
    }
    await wb.close()
  })
})
