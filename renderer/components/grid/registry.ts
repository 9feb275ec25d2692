// Grids register here by id so that the session can collect and restore their sort/filter state and
// Ctrl/Cmd+E can export the grid the user last worked in, without threading GridApis through props.
import type { GridApi, GridState } from 'ag-grid-community'
import { downloadCsv } from './csv'

interface Entry {
  api: GridApi
  fileName: () => string
}

const grids = new Map<string, Entry>()
/** States from a restored session for grids that are not mounted yet. */
const pendingStates = new Map<string, GridState>()
let lastFocused: string | null = null
const stateListeners = new Set<(gridId: string) => void>()

/** Sort/filter/column changes are workspace changes: the session autosaves on them. */
export function onGridStateChanged(cb: (gridId: string) => void): () => void {
  stateListeners.add(cb)
  return () => stateListeners.delete(cb)
}

export function gridStateChanged(gridId: string): void {
  stateListeners.forEach((cb) => cb(gridId))
}

export function registerGrid(id: string, api: GridApi, fileName: () => string): void {
  grids.set(id, { api, fileName })
  const pending = pendingStates.get(id)
  if (pending) {
    pendingStates.delete(id)
    apply(api, pending)
  }
}

export function unregisterGrid(id: string): void {
  grids.delete(id)
  if (lastFocused === id) lastFocused = null
}

export function markFocused(id: string): void {
  lastFocused = id
}

/** What a session keeps of a grid: how the user arranged it, not where they scrolled or clicked. */
const KEPT: Array<keyof GridState> = ['sort', 'filter', 'columnOrder', 'columnSizing', 'columnVisibility', 'columnPinning']

function kept(state: GridState): GridState {
  const out: GridState = {}
  for (const k of KEPT) if (state[k] !== undefined) (out as Record<string, unknown>)[k] = state[k]
  return out
}

/** setState resets what a state leaves out; everything but the kept parts stays as the grid has it. */
function apply(api: GridApi, state: GridState): void {
  const ignore = (Object.keys(api.getState()) as Array<keyof GridState>).filter((k) => !KEPT.includes(k) || state[k] === undefined)
  api.setState(kept(state), ignore as Parameters<GridApi['setState']>[1])
}

export function collectGridStates(): Record<string, GridState> {
  const out: Record<string, GridState> = {}
  for (const [id, { api }] of grids) out[id] = kept(api.getState())
  return out
}

export function applyGridStates(states: Record<string, unknown>): void {
  for (const [id, state] of Object.entries(states)) {
    const entry = grids.get(id)
    if (entry) apply(entry.api, state as GridState)
    else pendingStates.set(id, state as GridState)
  }
}

/** The CSV of a grid as the user sees it (formatted values, current sort and filter). */
export function gridCsv(id: string): string | null {
  return grids.get(id)?.api.getDataAsCsv({ columnSeparator: ',' }) ?? null
}

export function exportGrid(id: string | null = lastFocused): boolean {
  const entry = id ? grids.get(id) : undefined
  if (!entry || !id) return false
  downloadCsv(entry.fileName(), gridCsv(id) ?? '')
  return true
}

/** Export the last focused grid, else the first visible one (for Ctrl/Cmd+E). */
export function exportActiveGrid(isVisible: (id: string) => boolean): boolean {
  if (lastFocused && grids.has(lastFocused) && isVisible(lastFocused)) return exportGrid(lastFocused)
  for (const id of grids.keys()) if (isVisible(id)) return exportGrid(id)
  return false
}
