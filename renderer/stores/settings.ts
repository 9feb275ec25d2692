import { defineStore } from 'pinia'
import { ref, watch } from 'vue'
import type { TraceConvention } from '../../common/contract'
import type { ColourMode } from '../components/grid/coolwarm'

// Preferences of this browser profile or desktop install, not of a workspace: they live in localStorage,
// not in the session file.
const KEY = 'ft.settings'

interface Saved {
  colourMode?: unknown
  csvBom?: unknown
  hideDegenerate?: unknown
  excludeBos?: unknown
  traceConvention?: unknown
  contextWindow?: unknown
}

/** Tokens shown either side of an example's token in its running text: sae_vis-like by default, adjustable. */
export const CONTEXT_WINDOW_DEFAULT = 24
export const CONTEXT_WINDOW_MAX = 512

/** A window size from storage or a field: an integer in [0, CONTEXT_WINDOW_MAX], else the default. */
export function contextWindowOf(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= CONTEXT_WINDOW_MAX ? v : CONTEXT_WINDOW_DEFAULT
}

function load(): Saved {
  try {
    return (JSON.parse(localStorage.getItem(KEY) ?? '{}') as Saved) ?? {}
  } catch {
    return {}
  }
}

export const useSettingsStore = defineStore('settings', () => {
  const saved = load()
  /** How values become colours (see coolwarm.ts): from zero by default, or pandas' per-column coolwarm. */
  const colourMode = ref<ColourMode>(saved.colourMode === 'coolwarm' ? 'coolwarm' : 'zero')
  /** CSV exports are UTF-8 without a BOM; Excel on Windows needs one to read non-ASCII tokens as UTF-8. */
  const csvBom = ref(saved.csvBom === true)
  /** Features flagged degenerate (BOS-only, constant, dense) are left out of every feature list. */
  const hideDegenerate = ref(saved.hideDegenerate === true)
  /** Feature statistics leave out the firings on BOS (main/cache/bos.ts), as sae_vis does, unless turned off. */
  const excludeBos = ref(saved.excludeBos !== false)
  /** The convention a new trace opens in: u, whose decomposition adds up to u·R, unless v is chosen. */
  const traceConvention = ref<TraceConvention>(saved.traceConvention === 'v' ? 'v' : 'u')
  /** Tokens before and after an example's token in the examples' running text (a row expands to all). */
  const contextWindow = ref(contextWindowOf(saved.contextWindow))

  watch([colourMode, csvBom, hideDegenerate, excludeBos, traceConvention, contextWindow], () => {
    try {
      const saving: Saved = {
        colourMode: colourMode.value,
        csvBom: csvBom.value,
        hideDegenerate: hideDegenerate.value,
        excludeBos: excludeBos.value,
        traceConvention: traceConvention.value,
        contextWindow: contextWindow.value,
      }
      localStorage.setItem(KEY, JSON.stringify(saving))
    } catch {
      // Storage may be unavailable (a locked-down profile): the choice then lasts until the page closes.
    }
  })

  return { colourMode, csvBom, hideDegenerate, excludeBos, traceConvention, contextWindow }
})
