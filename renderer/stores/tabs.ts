import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { TraceConvention, TracePointRequest } from '../../common/contract'
import { useSettingsStore } from './settings'

export interface FeatureTab {
  id: string
  kind: 'feature'
  featureId: number
}

/** A trace tab: where it sits, what the user chose in it, and whether the session keeps it. */
export interface TraceTab {
  id: string
  kind: 'trace'
  point: TracePointRequest
  /** Every trace tab is saved with the session and re-run when it is restored; a pinned one keeps its whole-corpus scores. */
  pinned: boolean
  convention: TraceConvention
  /** Head of the QK grid and pairs, and of the circuit tables; null: the trace's strongest head. */
  head: number | null
  /** Source position of the LN+OV and QK tables; null: the largest term of v's decomposition. */
  sourcePos: number | null
}

export type Tab =
  | { id: 'features'; kind: 'features' }
  | { id: 'tokens'; kind: 'tokens' }
  | { id: 'prompt'; kind: 'prompt' }
  | { id: 'compare'; kind: 'compare' }
  | { id: 'cache'; kind: 'cache' }
  | FeatureTab
  | TraceTab

const FIXED: Tab[] = [
  { id: 'features', kind: 'features' },
  { id: 'tokens', kind: 'tokens' },
  { id: 'prompt', kind: 'prompt' },
  { id: 'compare', kind: 'compare' },
  { id: 'cache', kind: 'cache' },
]

export function featureTabId(featureId: number): string {
  return `feature:${featureId}`
}

/** A short stable digest of a prompt, so a tab id stays readable however long the prompt is. */
function digest(text: string): string {
  let h = 5381
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 33) ^ text.charCodeAt(i)) >>> 0
  return h.toString(36)
}

/** One tab per point: tracing the same place again activates the tab that is already open. */
export function traceTabId(p: TracePointRequest): string {
  return 'sample' in p ? `trace:${p.feature}:${p.sample}/${p.pos}` : `trace:${p.feature}:prompt-${digest(p.prompt)}/${p.token}`
}

/** A saved point, checked field by field: session files are user files and may come from another version. */
function asPoint(v: unknown): TracePointRequest | null {
  if (!v || typeof v !== 'object') return null
  const o = v as Record<string, unknown>
  const nat = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0
  if (!nat(o.feature)) return null
  if (nat(o.sample) && nat(o.pos)) return { feature: o.feature, sample: o.sample, pos: o.pos }
  if (typeof o.prompt === 'string' && o.prompt.length > 0 && nat(o.token)) return { feature: o.feature, prompt: o.prompt, token: o.token }
  return null
}

const nullableNat = (x: unknown): number | null => (Number.isInteger(x) && (x as number) >= 0 ? (x as number) : null)

export const useTabsStore = defineStore('tabs', () => {
  const featureTabs = ref<FeatureTab[]>([])
  const traceTabs = ref<TraceTab[]>([])
  const active = ref<string>('features')

  const tabs = computed<Tab[]>(() => [...FIXED, ...featureTabs.value, ...traceTabs.value])

  function openFeature(featureId: number, activate = true): void {
    const id = featureTabId(featureId)
    if (!featureTabs.value.some((t) => t.id === id)) featureTabs.value.push({ id, kind: 'feature', featureId })
    if (activate) active.value = id
  }

  function openTrace(point: TracePointRequest, activate = true): string {
    const id = traceTabId(point)
    // A new trace opens in the preferred convention: u by default, whose terms add up to u·R (v is one click away).
    const convention = useSettingsStore().traceConvention
    if (!traceTabs.value.some((t) => t.id === id)) traceTabs.value.push({ id, kind: 'trace', point: { ...point }, pinned: false, convention, head: null, sourcePos: null })
    if (activate) active.value = id
    return id
  }

  function traceTab(id: string): TraceTab | undefined {
    return traceTabs.value.find((t) => t.id === id)
  }

  function updateTrace(id: string, change: Partial<Pick<TraceTab, 'pinned' | 'convention' | 'head' | 'sourcePos'>>): void {
    const t = traceTab(id)
    if (t) Object.assign(t, change)
  }

  function close(id: string): void {
    const order = [...featureTabs.value, ...traceTabs.value].map((t) => t.id)
    const at = order.indexOf(id)
    if (at < 0) return
    featureTabs.value = featureTabs.value.filter((t) => t.id !== id)
    traceTabs.value = traceTabs.value.filter((t) => t.id !== id)
    if (active.value === id) active.value = order.filter((x) => x !== id)[Math.max(0, at - 1)] ?? 'features'
  }

  /** Closes every feature and trace tab but `id` (the fixed tabs stay); `id` becomes the active tab. */
  function closeOthers(id: string): void {
    featureTabs.value = featureTabs.value.filter((t) => t.id === id)
    traceTabs.value = traceTabs.value.filter((t) => t.id === id)
    active.value = tabs.value.some((t) => t.id === id) ? id : 'features'
  }

  /** Closes the feature and trace tabs after `id` in the strip; the active one among them hands over to `id`. */
  function closeToRight(id: string): void {
    const order = tabs.value.map((t) => t.id)
    const at = order.indexOf(id)
    if (at < 0) return
    const closing = new Set(order.slice(at + 1))
    featureTabs.value = featureTabs.value.filter((t) => !closing.has(t.id))
    traceTabs.value = traceTabs.value.filter((t) => !closing.has(t.id))
    if (closing.has(active.value)) active.value = id
  }

  function activate(id: string): void {
    if (tabs.value.some((t) => t.id === id)) active.value = id
  }

  /** Restores tabs from a session; unknown kinds (from a newer app) and malformed entries are skipped, not fatal. */
  function restore(saved: Array<{ id: string; kind: string; [k: string]: unknown }>, activeId: string | null): void {
    featureTabs.value = saved
      .filter((t) => t.kind === 'feature' && Number.isInteger(t.featureId))
      .map((t) => ({ id: featureTabId(t.featureId as number), kind: 'feature' as const, featureId: t.featureId as number }))
    const traces: TraceTab[] = []
    for (const t of saved) {
      const point = t.kind === 'trace' ? asPoint(t.point) : null
      if (!point || traces.some((x) => x.id === traceTabId(point))) continue
      traces.push({
        id: traceTabId(point),
        kind: 'trace',
        point,
        // Files before unpinned traces were saved hold pinned ones only, without the flag.
        pinned: t.pinned !== false,
        // The saved convention; a file without one predates the choice, when every trace showed v.
        convention: t.convention === 'u' ? 'u' : 'v',
        head: nullableNat(t.head),
        sourcePos: nullableNat(t.sourcePos),
      })
    }
    traceTabs.value = traces
    active.value = activeId && tabs.value.some((t) => t.id === activeId) ? activeId : 'features'
  }

  function reset(): void {
    featureTabs.value = []
    traceTabs.value = []
    active.value = 'features'
  }

  return { tabs, featureTabs, traceTabs, active, openFeature, openTrace, traceTab, updateTrace, close, closeOthers, closeToRight, activate, restore, reset }
})
