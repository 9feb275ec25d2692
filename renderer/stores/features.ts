import { defineStore } from 'pinia'
import { computed, ref, shallowRef, watch } from 'vue'
import type { FeatureBos, FeatureDetail, FeatureSummary, PartialCoverage } from '../../common/contract'
import { call, errorMessage } from '../api'
import { useSettingsStore } from './settings'

type RowsListener = (updated: FeatureSummary[]) => void

export const useFeaturesStore = defineStore('features', () => {
  // 16k rows: a shallowRef keeps Vue from wrapping each one in a proxy; the grid gets edits as
  // transactions through onRowsUpdated instead of a re-render of the whole array.
  const rows = shallowRef<FeatureSummary[]>([])
  const byId = new Map<number, FeatureSummary>()
  const loading = ref(false)
  const error = ref<string | null>(null)
  /** Set while the rows are a running (or stopped) build's partial summary: how much of the corpus they cover. */
  const partial = ref<PartialCoverage | null>(null)
  /** Whether the rows' numbers count the firings on BOS (Settings → Exclude BOS), as the cache answered. */
  const bos = ref<FeatureBos | null>(null)
  const details = shallowRef(new Map<number, FeatureDetail>())
  const listeners = new Set<RowsListener>()
  /** Bumped on every load and patch: rows change in place, so views that read one row depend on this. */
  const revision = ref(0)
  const settings = useSettingsStore()

  /** The browser's rows: all, or without the degenerate ones when the setting hides them. */
  const shownRows = computed(() => (settings.hideDegenerate ? rows.value.filter((r) => r.flags.length === 0) : rows.value))
  const hiddenCount = computed(() => rows.value.length - shownRows.value.length)

  /**
   * Whether a feature is to be left out of a list (token search, a prompt's top features): flagged, with
   * the setting on. A feature the list does not know (no cache yet) is shown.
   */
  function hidden(id: number): boolean {
    void revision.value
    return settings.hideDegenerate && (byId.get(id)?.flags.length ?? 0) > 0
  }

  /** `quiet`: a failure leaves the rows and error as they are (a build's partial summary may not exist yet). */
  async function load(opts: { quiet?: boolean } = {}): Promise<void> {
    loading.value = true
    try {
      const list = await call('features.list', { includeBos: !settings.excludeBos })
      byId.clear()
      for (const f of list.features) byId.set(f.id, f)
      rows.value = list.features
      partial.value = list.partial ?? null
      bos.value = list.bos
      details.value = new Map()
      revision.value++
      error.value = null
    } catch (err) {
      if (!opts.quiet) error.value = errorMessage(err)
    } finally {
      loading.value = false
    }
  }

  // Every number shown changes with the setting: the rows again, and details asked anew (feature tabs
  // read them again when the rows' mode differs from theirs).
  watch(
    () => settings.excludeBos,
    () => {
      if (rows.value.length) void load()
    },
  )

  function clear(): void {
    rows.value = []
    partial.value = null
    bos.value = null
    byId.clear()
    details.value = new Map()
  }

  function onRowsUpdated(cb: RowsListener): () => void {
    listeners.add(cb)
    return () => listeners.delete(cb)
  }

  function patch(id: number, change: Partial<Pick<FeatureSummary, 'label' | 'notes'>>): void {
    const old = byId.get(id)
    if (!old) return
    const next = { ...old, ...change }
    byId.set(id, next)
    // Replace in place without touching the ref: the grid already holds the row and gets a transaction.
    const i = rows.value.indexOf(old)
    if (i >= 0) rows.value[i] = next
    const d = details.value.get(id)
    if (d) details.value.set(id, { ...d, stats: { ...d.stats, ...change } })
    revision.value++
    listeners.forEach((cb) => cb([next]))
  }

  async function detail(id: number): Promise<FeatureDetail> {
    const cached = details.value.get(id)
    if (cached) return cached
    const includeBos = !settings.excludeBos
    const d = await call('feature.get', { id, topK: 100, includeBos })
    // A partial answer is not kept past the next load (load() starts a new map), nor one of the other mode.
    if (includeBos === !settings.excludeBos) details.value.set(id, d)
    return d
  }

  async function setLabel(id: number, label: string): Promise<void> {
    await call('labels.set', { id, label })
    patch(id, { label })
  }

  async function setNotes(id: number, notes: string): Promise<void> {
    await call('notes.set', { id, notes })
    patch(id, { notes })
  }

  function summary(id: number): FeatureSummary | undefined {
    void revision.value
    return byId.get(id)
  }

  return { rows, shownRows, hiddenCount, hidden, revision, loading, error, partial, bos, load, clear, onRowsUpdated, detail, setLabel, setNotes, summary }
})
