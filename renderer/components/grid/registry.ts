// Grids register here by id so that the session can collect and restore their sort/filter state and
// Ctrl/Cmd+E can export the grid the user last worked in, without threading GridApis through props.
import type { Column, GridApi, GridState } from 'ag-grid-community'
import { useSettingsStore } from '../../stores/settings'
import type { ColumnContext } from './columns'
import { downloadCsv, rawTokenText } from './csv'

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

/** The columns a CSV holds: the shown ones in their order, each followed by its export-only companions. */
function exportColumns(api: GridApi): Column[] {
  const companions = (api.getColumns() ?? []).filter((c) => (c.getColDef().context as ColumnContext | undefined)?.exportAfter)
  const out: Column[] = []
  for (const col of api.getAllDisplayedColumns()) {
    if ((col.getColDef().context as ColumnContext | undefined)?.noExport) continue
    out.push(col)
    for (const c of companions) if ((c.getColDef().context as ColumnContext).exportAfter === col.getColId()) out.push(c)
  }
  return out
}

/**
 * A CSV value: numbers at full precision (JavaScript's shortest round-trip form, no thousands separators,
 * no percent signs, a fraction as the fraction), token text with its whitespace as it is (not ·, ↩, →).
 */
export function csvValue(value: unknown, tokenText: boolean): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : ''
  const text = String(value)
  return tokenText ? rawTokenText(text) : text
}

/**
 * The CSV of a grid's data, in its current sort and filter, as ag-grid's CsvExportModule writes it (RFC
 * 4180 quoting), with raw values in place of the formatted ones the grid shows.
 */
export function gridCsv(id: string): string | null {
  const api = grids.get(id)?.api
  if (!api) return null
  return api.getDataAsCsv({
    columnSeparator: ',',
    columnKeys: exportColumns(api),
    processCellCallback: (p) => csvValue(p.value, Boolean((p.column.getColDef().context as ColumnContext | undefined)?.tokenText)),
    processHeaderCallback: (p) => p.column.getColDef().headerName ?? p.column.getColId(),
  }) ?? null
}

export function exportGrid(id: string | null = lastFocused): boolean {
  const entry = id ? grids.get(id) : undefined
  if (!entry || !id) return false
  downloadCsv(entry.fileName(), gridCsv(id) ?? '', useSettingsStore().csvBom)
  return true
}

/** Export the last focused grid, else the first visible one (for Ctrl/Cmd+E). */
export function exportActiveGrid(isVisible: (id: string) => boolean): boolean {
  if (lastFocused && grids.has(lastFocused) && isVisible(lastFocused)) return exportGrid(lastFocused)
  for (const id of grids.keys()) if (isVisible(id)) return exportGrid(id)
  return false
}
