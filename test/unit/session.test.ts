// Sessions and annotations: atomic .ftsession writes, refusal of corrupt or future files (left
// untouched), the autosave slot, and labels/notes that live outside the (rebuildable) cache.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { unwrap } from '../../main/app/dispatch'
import type { Workbench } from '../../main/app/workbench'
import { readSessionFile, SESSION_VERSION, writeFileAtomic } from '../../main/session/file'
import { LabelStore } from '../../main/session/labels'
import { tempDir, tinyWorkbench } from './helpers/cache'

const state = {
  tabs: [{ id: 'features', kind: 'features' }, { id: 'f-3', kind: 'feature', featureId: 3 }],
  activeTab: 'f-3',
  grids: { features: { sort: { sortModel: [{ colId: 'density', sort: 'desc' }] } } },
  ui: { splitter: 0.4 },
}

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temp file behind', () => {
    const dir = tempDir()
    const path = join(dir, 'a.ftsession')
    writeFileAtomic(path, 'old')
    writeFileAtomic(path, 'new content')
    expect(readFileSync(path, 'utf-8')).toBe('new content')
    expect(readdirSync(dir)).toEqual(['a.ftsession'])
  })

  it('leaves the old file in place when the write fails', () => {
    const dir = tempDir()
    const path = join(dir, 'a.ftsession')
    writeFileAtomic(path, 'old')
    // A write that cannot even create its temp file throws and touches nothing else.
    expect(() => writeFileAtomic(join(dir, 'missing-dir', 'x.ftsession'), 'new')).toThrow()
    expect(readFileSync(path, 'utf-8')).toBe('old')
    expect(readdirSync(dir)).toEqual(['a.ftsession'])
  })
})

describe('sessions through the handler table', () => {
  let dir: string
  let wb: Workbench

  beforeAll(() => {
    dir = tempDir()
    wb = tinyWorkbench(dir)
  })
  afterAll(async () => wb?.close())

  it('saves and loads a session with the UI state, labels and notes', async () => {
    unwrap(await wb.invoke('labels.set', { id: 3, label: 'closing brace' }))
    unwrap(await wb.invoke('notes.set', { id: 3, notes: 'fires on } after a dict literal' }))
    const path = join(dir, 'work.ftsession')
    const saved = unwrap(await wb.invoke('session.save', { path, state }))
    expect(saved.path).toBe(path)
    const loaded = unwrap(await wb.invoke('session.load', { path }))
    expect(loaded?.session.format).toBe('feature-tracer-session')
    expect(loaded?.session.version).toBe(SESSION_VERSION)
    expect(loaded?.session.state).toEqual(state)
    expect(loaded?.session.labels['3']).toEqual({ label: 'closing brace', notes: 'fires on } after a dict literal' })
    const info = unwrap(await wb.invoke('bundle.info', {}))
    expect(loaded?.session.bundle).toEqual({ path: info.path, hash: info.hash })
  })

  it('restores labels from a session into a fresh user-data folder, never overwriting newer ones', async () => {
    const path = join(dir, 'work.ftsession')
    const other = tinyWorkbench(tempDir())
    unwrap(await other.invoke('labels.set', { id: 3, label: 'newer label' }))
    const loaded = unwrap(await other.invoke('session.load', { path }))
    expect(loaded?.labelsImported).toBe(1) // the notes only: the label was already set
    const again = unwrap(await other.invoke('session.load', { path }))
    expect(again?.labelsImported).toBe(0)
    await other.close()
    const store = new LabelStore(join(other.options.userDataDir, 'labels.sqlite'))
    const hash = loaded?.session.bundle.hash as string
    expect(store.get(hash, 3)).toEqual({ label: 'newer label', notes: 'fires on } after a dict literal' })
    store.close()
  })

  it('autosaves to a slot and loads it back; an empty slot is null', async () => {
    const fresh = tinyWorkbench(tempDir())
    expect(unwrap(await fresh.invoke('session.autosaved', {})).loaded).toBeNull()
    const saved = unwrap(await fresh.invoke('session.autosave', { state }))
    expect(existsSync(saved.path)).toBe(true)
    expect(saved.movedAside).toBeNull()
    expect(unwrap(await fresh.invoke('session.autosaved', {})).loaded?.session.state).toEqual(state)
    await fresh.close()
  })

  it.each([
    ['not JSON', '{"format": "feature-tracer-session", "version": 1, ', 'session_corrupt'],
    ['another format', JSON.stringify({ format: 'something-else', version: 1 }), 'session_corrupt'],
    ['a damaged state', JSON.stringify({ format: 'feature-tracer-session', version: 1, savedAt: 'x', bundle: { path: 'p', hash: 'h' }, state: { tabs: 3 } }), 'session_corrupt'],
    ['a future version', JSON.stringify({ format: 'feature-tracer-session', version: SESSION_VERSION + 1, whatever: true }), 'session_future_version'],
  ])('refuses %s with a clear message and leaves the file untouched', async (_what, text, code) => {
    const path = join(dir, `bad-${code}-${text.length}.ftsession`)
    writeFileSync(path, text)
    const before = statSync(path)
    const r = await wb.invoke('session.load', { path })
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe(code)
      expect(r.error.message).toContain(path)
      expect(r.error.message).toMatch(/left as it is/)
    }
    expect(readFileSync(path, 'utf-8')).toBe(text)
    expect(statSync(path).mtimeMs).toBe(before.mtimeMs)
  })

  it('autosave moves aside a slot changed by someone else since its last write, and skips the read otherwise', async () => {
    const fresh = tinyWorkbench(tempDir())
    const first = unwrap(await fresh.invoke('session.autosave', { state }))
    expect(unwrap(await fresh.invoke('session.autosave', { state })).movedAside).toBeNull()
    writeFileSync(first.path, '{"format": "feature-tracer-session", "version": 1, "state": [cut')
    const third = unwrap(await fresh.invoke('session.autosave', { state }))
    expect(third.movedAside?.from).toBe(first.path)
    expect(readFileSync(third.movedAside!.to, 'utf-8')).toContain('[cut')
    expect(readSessionFile(first.path).state).toEqual(state)
    await fresh.close()
  })

  it('reports a missing file as not_found, and moves a corrupt autosave slot aside, byte for byte', async () => {
    const r = await wb.invoke('session.load', { path: join(dir, 'nope.ftsession') })
    expect(r.ok ? null : r.error.code).toBe('not_found')
    const slotPath = await wb.autosavePath()
    mkdirSync(dirname(slotPath), { recursive: true })
    writeFileSync(slotPath, 'garbage')
    const slot = unwrap(await wb.invoke('session.autosaved', {}))
    expect(slot.loaded).toBeNull()
    expect(slot.movedAside?.from).toBe(slotPath)
    expect(existsSync(slotPath)).toBe(false)
    expect(readFileSync(slot.movedAside!.to, 'utf-8')).toBe('garbage')
    expect(unwrap(await wb.invoke('workbench.notices', {})).notices.some((n) => n.movedAside?.to === slot.movedAside!.to)).toBe(true)
  })

  it('keeps labels per bundle and rejects labels for features the SAE lacks', async () => {
    const r = await wb.invoke('labels.set', { id: 64, label: 'x' })
    expect(r.ok ? null : r.error.code).toBe('not_found')
    const store = new LabelStore(join(tempDir(), 'labels.sqlite'))
    store.setLabel('bundle-a', 1, 'a')
    store.setLabel('bundle-b', 1, 'b')
    expect(store.get('bundle-a', 1).label).toBe('a')
    expect(store.get('bundle-b', 1).label).toBe('b')
    expect([...store.all('bundle-a').keys()]).toEqual([1])
    store.close()
  })

  it('reads what it writes with readSessionFile directly', () => {
    const loaded = readSessionFile(join(dir, 'work.ftsession'))
    expect(loaded.state.activeTab).toBe('f-3')
  })
})
