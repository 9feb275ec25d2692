import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { MovedAside, SessionLoaded, SessionState } from '../../common/contract'
import { call, errorMessage } from '../api'
import { applyGridStates, collectGridStates } from '../components/grid/registry'
import { useBundleStore } from './bundle'
import { useCacheStore } from './cache'
import { useCorpusScoresStore } from './corpus-scores'
import { useFeaturesStore } from './features'
import { useTabsStore } from './tabs'

const AUTOSAVE_DELAY_MS = 3000
/** The session file this page saves to, per bundle: a reload (which restores the autosave) keeps it. */
const SAVED_KEY = 'ft.sessionFile'

interface SavedFile {
  bundleHash: string
  path: string
  savedAt: string
}

function rememberFile(file: SavedFile): void {
  try {
    sessionStorage.setItem(SAVED_KEY, JSON.stringify(file))
  } catch {
    // No storage: after a reload the status bar shows an unsaved session, as before.
  }
}

function rememberedFile(bundleHash: string | undefined): SavedFile | null {
  try {
    const f = JSON.parse(sessionStorage.getItem(SAVED_KEY) ?? 'null') as SavedFile | null
    return f && f.bundleHash === bundleHash && typeof f.path === 'string' && typeof f.savedAt === 'string' ? f : null
  } catch {
    return null
  }
}

export const useSessionStore = defineStore('session', () => {
  /** The .ftsession file Ctrl/Cmd+S writes to; null until the user picks one. */
  const path = ref<string | null>(null)
  const savedAt = ref<string | null>(null)
  const autosavedAt = ref<string | null>(null)
  /** Where the open bundle's autosave slot lives. */
  const autosavePath = ref<string | null>(null)
  /** The folder a new session file is suggested in (main's answer: the user's home folder). */
  const defaultDir = ref<string | null>(null)
  /** The last autosave that could not be read and was moved aside (also a notice banner). */
  const movedAside = ref<MovedAside | null>(null)
  const error = ref<string | null>(null)
  const notice = ref<string | null>(null)
  const ui = ref<Record<string, unknown>>({})
  let timer: ReturnType<typeof setTimeout> | null = null
  /** Bumped by every explicit restore, so a slower start-up autosave restore cannot overwrite it. */
  let generation = 0

  function collect(): SessionState {
    const tabs = useTabsStore()
    const corpus = useCorpusScoresStore()
    return {
      // Every trace tab is kept as its point (a restored one re-runs its trace); a pinned one's whole-corpus
      // scores (a job of minutes) go into the file too and come back from it.
      tabs: [
        ...tabs.featureTabs.map((t) => ({ ...t })),
        ...tabs.traceTabs.map((t) => (t.pinned ? { ...t, point: { ...t.point }, corpusScores: corpus.saved(t.id) } : { ...t, point: { ...t.point } })),
      ],
      activeTab: tabs.active,
      grids: collectGridStates(),
      ui: { ...ui.value },
    }
  }

  async function save(to: string | null = path.value): Promise<boolean> {
    if (!to) return false
    try {
      const res = await call('session.save', { path: to, state: collect() })
      path.value = res.path
      savedAt.value = res.savedAt
      remember()
      error.value = null
      notice.value = `Session saved to ${res.path}`
      return true
    } catch (err) {
      error.value = `Could not save the session: ${errorMessage(err)}`
      return false
    }
  }

  async function autosave(): Promise<void> {
    if (!useBundleStore().info) return
    try {
      const res = await call('session.autosave', { state: collect() })
      autosavedAt.value = res.savedAt
      autosavePath.value = res.path
      if (res.movedAside) movedAside.value = res.movedAside
    } catch (err) {
      // Autosave runs unattended; a failure is shown but must not interrupt the work.
      console.warn('autosave failed:', errorMessage(err))
    }
  }

  /** Debounced: tab switches and label edits come in bursts. */
  function scheduleAutosave(): void {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = null
      void autosave()
    }, AUTOSAVE_DELAY_MS)
  }

  /**
   * Sends a pending autosave now: the page is going away (a reload, a closed window), and the last
   * AUTOSAVE_DELAY_MS of changes would otherwise be lost with its timer.
   */
  function flushAutosave(): void {
    if (!timer) return
    clearTimeout(timer)
    timer = null
    void autosave()
  }

  async function apply(loaded: SessionLoaded): Promise<void> {
    const bundle = useBundleStore()
    const features = useFeaturesStore()
    const cache = useCacheStore()
    if (bundle.info?.hash !== loaded.session.bundle.hash) {
      if (!(await bundle.open(loaded.session.bundle.path))) throw new Error(bundle.error ?? 'cannot open the bundle')
      features.clear()
      if (bundle.info) cache.set(bundle.info.cache)
      // Main imports a session's labels only into the bundle they belong to, now the open one.
      const again = await call('session.load', { path: loaded.path })
      loaded.labelsImported = again.labelsImported
      loaded.labelsSkipped = again.labelsSkipped
    }
    if (cache.ready) await features.load()
    const tabs = useTabsStore()
    tabs.restore(loaded.session.state.tabs, loaded.session.state.activeTab)
    const corpus = useCorpusScoresStore()
    for (const saved of loaded.session.state.tabs) {
      const tab = saved.kind === 'trace' ? tabs.traceTab(saved.id) : undefined
      if (tab && 'corpusScores' in saved) corpus.restoreSaved(tab.id, tab.point, saved.corpusScores)
    }
    applyGridStates(loaded.session.state.grids)
    ui.value = { ...loaded.session.state.ui }
  }

  /** Opens a session file; a corrupt or future-version file is refused with main's message. */
  async function restore(from: string): Promise<boolean> {
    generation++
    try {
      const loaded = await call('session.load', { path: from })
      await apply(loaded)
      path.value = loaded.path
      savedAt.value = loaded.session.savedAt
      remember()
      error.value = null
      notice.value =
        `Session restored from ${loaded.path}` +
        (loaded.labelsImported ? ` (${loaded.labelsImported} labels imported)` : '') +
        (loaded.labelsSkipped ? ` (${loaded.labelsSkipped} labels skipped: their features do not exist in this SAE)` : '')
      return true
    } catch (err) {
      error.value = `Session not restored: ${errorMessage(err)}`
      return false
    }
  }

  /**
   * At start: reopen the open bundle's autosaved workspace. One that cannot be read was moved aside by main
   * (before any autosave could replace it); the notice banner names where it is now.
   */
  async function restoreAutosave(): Promise<void> {
    const started = generation
    try {
      const res = await call('session.autosaved', {})
      defaultDir.value = res.defaultDir
      // A reload: the page saved to (or opened) a session file before; Ctrl/Cmd+S still writes there.
      const file = rememberedFile(useBundleStore().info?.hash)
      if (file && started === generation) {
        path.value = file.path
        savedAt.value = file.savedAt
      }
      if (res.movedAside) movedAside.value = res.movedAside
      if (!res.loaded) return
      autosavePath.value = res.loaded.path
      if (started === generation && res.loaded.session.bundle.hash === useBundleStore().info?.hash) await apply(res.loaded)
    } catch (err) {
      error.value = `The autosaved session was not restored: ${errorMessage(err)}`
    }
  }

  function remember(): void {
    const hash = useBundleStore().info?.hash
    if (hash && path.value && savedAt.value) rememberFile({ bundleHash: hash, path: path.value, savedAt: savedAt.value })
  }

  function defaultPath(): string {
    const dir = defaultDir.value?.replace(/[\\/]+$/, '')
    const name = (useBundleStore().info?.name ?? 'workspace').replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'workspace'
    return `${dir ?? '.'}/${name}.ftsession`
  }

  return { path, savedAt, autosavedAt, autosavePath, defaultDir, movedAside, error, notice, ui, collect, save, autosave, scheduleAutosave, flushAutosave, restore, restoreAutosave, defaultPath }
})
