import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

export type Tab =
  | { id: 'features'; kind: 'features' }
  | { id: 'tokens'; kind: 'tokens' }
  | { id: 'cache'; kind: 'cache' }
  | { id: string; kind: 'feature'; featureId: number }

const FIXED: Tab[] = [
  { id: 'features', kind: 'features' },
  { id: 'tokens', kind: 'tokens' },
  { id: 'cache', kind: 'cache' },
]

export function featureTabId(featureId: number): string {
  return `feature:${featureId}`
}

export const useTabsStore = defineStore('tabs', () => {
  const featureTabs = ref<Array<{ id: string; kind: 'feature'; featureId: number }>>([])
  const active = ref<string>('features')

  const tabs = computed<Tab[]>(() => [...FIXED, ...featureTabs.value])

  function openFeature(featureId: number, activate = true): void {
    const id = featureTabId(featureId)
    if (!featureTabs.value.some((t) => t.id === id)) featureTabs.value.push({ id, kind: 'feature', featureId })
    if (activate) active.value = id
  }

  function close(id: string): void {
    const i = featureTabs.value.findIndex((t) => t.id === id)
    if (i < 0) return
    featureTabs.value.splice(i, 1)
    if (active.value === id) active.value = featureTabs.value[Math.max(0, i - 1)]?.id ?? 'features'
  }

  function activate(id: string): void {
    if (tabs.value.some((t) => t.id === id)) active.value = id
  }

  /** Restores tabs from a session; unknown kinds (from a newer app) are skipped, not fatal. */
  function restore(saved: Array<{ id: string; kind: string; featureId?: unknown }>, activeId: string | null): void {
    featureTabs.value = saved
      .filter((t) => t.kind === 'feature' && Number.isInteger(t.featureId))
      .map((t) => ({ id: featureTabId(t.featureId as number), kind: 'feature' as const, featureId: t.featureId as number }))
    active.value = activeId && tabs.value.some((t) => t.id === activeId) ? activeId : 'features'
  }

  function reset(): void {
    featureTabs.value = []
    active.value = 'features'
  }

  return { tabs, featureTabs, active, openFeature, close, activate, restore, reset }
})
