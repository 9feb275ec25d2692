// Column definitions shared by the grids, named as the seed notebook's tables name them.
import type { CellClickedEvent, ColDef, ICellRendererParams, ValueFormatterParams } from 'ag-grid-community'
import type { ActivationRow } from '../../../common/contract'
import { useSettingsStore } from '../../stores/settings'
import { colourScale, scaleNow, scaleStyle, type ColourScale, type ScaleOf } from './coolwarm'
import ContextCell, { type ContextCellParams } from '../text/ContextCell.vue'

export function fixed(digits: number) {
  return (p: ValueFormatterParams): string => (typeof p.value === 'number' && Number.isFinite(p.value) ? p.value.toFixed(digits) : '')
}

/** Densities span orders of magnitude; three significant digits keep rare features readable. */
export function percent(p: ValueFormatterParams): string {
  return typeof p.value === 'number' ? `${(p.value * 100).toPrecision(3)}%` : ''
}

/** What a column's colours mean (DataGrid draws its legend from this) and how its CSV is written. */
export interface ColumnContext {
  colourScale?: ScaleOf
  /** Export-only columns (hidden in the grid) come right after the column with this id in the CSV. */
  exportAfter?: string
  /** The cell holds token text with visible whitespace (·, ↩, →); the CSV gets the text itself. */
  tokenText?: boolean
  /** A column of buttons, not data: left out of the CSV. */
  noExport?: boolean
}

/** A numeric column painted on `scale` (read when a cell paints); its legend is drawn in the grid's toolbar. */
export function colouredColumn<T>(field: keyof T & string, scale: ScaleOf, extra: ColDef<T> = {}): ColDef<T> {
  const context: ColumnContext = { colourScale: scale }
  return {
    field: field as unknown as ColDef<T>['field'],
    // The notebook's column names, not ag-grid's prettified ones ("Str Tokens").
    headerName: field,
    type: 'numericColumn',
    filter: 'agNumberColumnFilter',
    width: 120,
    valueFormatter: fixed(4),
    cellStyle: (p) => (typeof p.value === 'number' ? scaleStyle(p.value, scaleNow(scale)) : null),
    context,
    ...extra,
  }
}

function valuesOf<T>(rows: readonly T[], field: keyof T & string): number[] {
  return rows.map((r) => r[field] as unknown as number)
}

/**
 * A non-negative quantity (an activation): white at 0, deepest at `bound` — pass the feature's max, so that
 * every grid of the feature paints the same value alike; without it, the rows' largest value.
 */
export function sequentialColumn<T>(field: keyof T & string, rows: readonly T[], bound?: number, extra: ColDef<T> = {}): ColDef<T> {
  return colouredColumn(field, colourScale('sequential', valuesOf(rows, field), useSettingsStore().colourMode, bound), extra)
}

/**
 * A signed quantity (W_E·v, a decomposition's terms, a score) painted symmetrically around zero (white = no
 * effect), where a red and a blue of the same depth mean the same strength.
 */
export function divergingColumn<T>(field: keyof T & string, rows: readonly T[], extra: ColDef<T> = {}): ColDef<T> {
  return colouredColumn(field, colourScale('diverging', valuesOf(rows, field), useSettingsStore().colourMode), extra)
}

/**
 * The event a corpus token link sends up the page when the pointer rests on it, with the token's corpus
 * sequence: the app runs that sequence's batch meanwhile, for the click that usually follows.
 */
export const TOKEN_DWELL_EVENT = 'ft-token-dwell'
const DWELL_MS = 150

/** After the pointer has rested `DWELL_MS` on `el`, it dispatches TOKEN_DWELL_EVENT with `sample` (bubbling). */
function announceDwell(el: HTMLElement, sample: number): void {
  let timer: ReturnType<typeof setTimeout> | undefined
  el.addEventListener('pointerenter', () => {
    timer = setTimeout(() => el.dispatchEvent(new CustomEvent(TOKEN_DWELL_EVENT, { bubbles: true, detail: sample })), DWELL_MS)
  })
  el.addEventListener('pointerleave', () => clearTimeout(timer))
}

/**
 * The token cell of a grid whose rows are places in the corpus or a prompt: the token is a button that
 * traces the feature there (Enter and double-click on the row do the same). `sampleOf` gives a corpus
 * row's sequence, announced when the pointer rests on the button (prompt rows have none).
 */
export function traceableToken<T>(onTrace: (row: T) => void, what = 'the feature', sampleOf?: (row: T) => number): Pick<ColDef<T>, 'cellRenderer' | 'onCellClicked'> {
  return {
    cellRenderer: (p: ICellRendererParams<T>) => {
      const b = document.createElement('button')
      b.type = 'button'
      b.className = 'token-link'
      b.dataset.action = 'trace'
      b.title = `Trace ${what} here`
      b.textContent = String(p.valueFormatted ?? p.value ?? '')
      if (sampleOf && p.data) announceDwell(b, sampleOf(p.data))
      return b
    },
    // The whole cell traces, not only the text: a short token leaves most of the cell empty.
    onCellClicked: (e: CellClickedEvent<T>) => {
      if (e.data) onTrace(e.data)
    },
  }
}

/** A feature id as a link that opens the feature's tab (`data-feature-link` holds the id). */
export function featureLinkElement(id: number, open: (id: number) => void, text = `#${id}`): HTMLButtonElement {
  const b = document.createElement('button')
  b.type = 'button'
  b.className = 'feature-link'
  b.dataset.featureLink = String(id)
  b.title = `Open feature ${id}`
  b.textContent = text
  b.addEventListener('click', (e) => {
    e.stopPropagation()
    open(id)
  })
  return b
}

/** A column of feature ids, each a link to its feature tab. */
export function featureIdColumn<T>(field: keyof T & string, open: (id: number) => void, extra: ColDef<T> = {}): ColDef<T> {
  return {
    field: field as unknown as ColDef<T>['field'],
    headerName: 'feature',
    width: 90,
    type: 'numericColumn',
    filter: 'agNumberColumnFilter',
    cellRenderer: (p: ICellRendererParams<T>) => (typeof p.value === 'number' ? featureLinkElement(p.value, open, String(p.value)) : ''),
    ...extra,
  }
}

type SeedRow = Omit<ActivationRow, 'activation'>

/**
 * The seed's token table without its value column: str_tokens, unique_token, context, batch, pos, label.
 * `corpusRows`: the rows are corpus tokens (`batch` is their sequence), not a prompt's. `runningText`: the
 * context column draws each row's sequence shaded by that feature's activation on that scale (ContextCell);
 * its CSV and filter keep the context string.
 */
export function seedColumns<T extends SeedRow>(onTrace?: (row: T) => void, corpusRows = false, runningText?: ContextCellParams): ColDef<T>[] {
  const sampleOf = corpusRows ? (r: SeedRow) => r.batch : undefined
  const tokenText: ColumnContext = { tokenText: true }
  // Narrow fixed columns leave the context its width at 1280 px beside a feature tab's side column.
  const seed: ColDef<SeedRow>[] = [
    { field: 'str_tokens', headerName: 'str_tokens', width: 100, cellClass: 'mono', context: tokenText, ...(onTrace ? traceableToken(onTrace as (row: SeedRow) => void, undefined, sampleOf) : {}) },
    // Export only: the token's id, beside its text (a text can be ambiguous; the id never is).
    { field: 'token_id', headerName: 'token_id', hide: true, context: { exportAfter: 'str_tokens' } satisfies ColumnContext },
    { field: 'unique_token', headerName: 'unique_token', width: 110, cellClass: 'mono' },
    runningText
      ? { field: 'context', headerName: 'context', flex: 1, minWidth: 280, context: tokenText, cellRenderer: ContextCell, cellRendererParams: runningText }
      : { field: 'context', headerName: 'context', flex: 1, minWidth: 280, cellClass: 'mono', tooltipField: 'context', context: tokenText },
    { field: 'batch', headerName: 'batch', width: 66, type: 'numericColumn', filter: 'agNumberColumnFilter' },
    { field: 'pos', headerName: 'pos', width: 58, type: 'numericColumn', filter: 'agNumberColumnFilter' },
    { field: 'label', headerName: 'label', width: 76 },
  ]
  return seed as unknown as ColDef<T>[]
}

export interface TokenTableOptions<T> {
  /** Makes the str_tokens cell a "trace here" button. */
  onTrace?: (row: T) => void
  /** The rows are corpus tokens (see seedColumns). */
  corpusRows?: boolean
}

/**
 * The seed's token table: str_tokens, unique_token, context, batch, pos, label, and the activation painted
 * from 0 to `max`: the feature's maximum, the same for every grid of the feature. With `feature` (corpus
 * rows), the context is running text shaded on that same scale.
 */
export function activationColumns<T extends ActivationRow = ActivationRow>(
  rows: readonly T[],
  extra: ColDef<T>[] = [],
  opts: TokenTableOptions<T> & { max?: number; feature?: number } = {},
): ColDef<T>[] {
  const scale = colourScale('sequential', valuesOf(rows, 'activation'), useSettingsStore().colourMode, opts.max)
  const runningText = opts.feature !== undefined && opts.corpusRows ? { feature: opts.feature, scale } : undefined
  return [...extra, ...seedColumns<T>(opts.onTrace, opts.corpusRows, runningText), colouredColumn<T>('activation', scale, { width: 96, sort: 'desc' })]
}

/**
 * The same table with an activation score (resid_mid·v, signed: painted around zero) in place of the
 * activation. `rows` set the colour scale: pass every row the scale should span (e.g. a corpus's top and
 * bottom rows for both their grids). A grid created before its rows arrive passes a getter of the scale
 * instead: its cells read it when they paint, so the column defs (and the grid) stay as they are when
 * the rows come (the owner refreshes the cells when the scale changes under rows already shown).
 */
export function scoreColumns<T extends SeedRow & { score: number }>(
  rows: readonly T[] | (() => ColourScale),
  opts: TokenTableOptions<T> & {
    /** How the score column is sorted at first (highest first). */
    sort?: 'asc' | 'desc'
    /** The context as running text shaded by every token's score, on the score column's scale. */
    runningText?: Omit<ContextCellParams, 'scale'>
  } = {},
): ColDef<T>[] {
  const scale: ScaleOf = typeof rows === 'function' ? rows : colourScale('diverging', valuesOf(rows, 'score'), useSettingsStore().colourMode)
  const runningText = opts.runningText && { valueName: 'score', ...opts.runningText, scale }
  return [...seedColumns<T>(opts.onTrace, opts.corpusRows, runningText), colouredColumn<T>('score', scale, { sort: opts.sort ?? 'desc' })]
}

type FidelityRow = SeedRow & { predicted: number; preActivation: number; activation: number; error: number }

/**
 * The grid of a fidelity check's largest disagreements: the seed's columns, the linear prediction, the
 * true pre-activation and activation, and the error painted around zero, largest |error| first. (Such a
 * row's `score` holds the prediction too, so only `predicted` is shown.)
 */
export function fidelityColumns<T extends FidelityRow>(rows: readonly T[], opts: TokenTableOptions<T> = {}): ColDef<T>[] {
  const num = (field: 'predicted' | 'preActivation' | 'activation'): ColDef<T> =>
    ({ field, headerName: field, width: 110, type: 'numericColumn', filter: 'agNumberColumnFilter', valueFormatter: fixed(4) }) as ColDef<T>
  return [
    ...seedColumns<T>(opts.onTrace, opts.corpusRows),
    num('predicted'),
    num('preActivation'),
    num('activation'),
    divergingColumn<T>('error', rows, { headerName: 'error', sort: 'desc', comparator: (a: number, b: number) => Math.abs(a) - Math.abs(b) }),
  ]
}

export function activationRowId(r: ActivationRow): string {
  return r.label
}
