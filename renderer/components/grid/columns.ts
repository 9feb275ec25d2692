// Column definitions shared by the grids, named as the seed notebook's tables name them.
import type { CellClickedEvent, ColDef, ICellRendererParams, ValueFormatterParams } from 'ag-grid-community'
import type { ActivationRow } from '../../../common/contract'
import { columnRange, gradientStyle, symmetricBound } from './coolwarm'

export function fixed(digits: number) {
  return (p: ValueFormatterParams): string => (typeof p.value === 'number' && Number.isFinite(p.value) ? p.value.toFixed(digits) : '')
}

/** Densities span orders of magnitude; three significant digits keep rare features readable. */
export function percent(p: ValueFormatterParams): string {
  return typeof p.value === 'number' ? `${(p.value * 100).toPrecision(3)}%` : ''
}

/** A numeric column painted with the coolwarm gradient over the given rows' values, as pandas does. */
export function gradientColumn<T>(field: keyof T & string, rows: readonly T[], extra: ColDef<T> = {}): ColDef<T> {
  const range = columnRange(rows.map((r) => r[field] as unknown as number)) ?? { min: 0, max: 0 }
  return {
    field: field as unknown as ColDef<T>['field'],
    // The notebook's column names, not ag-grid's prettified ones ("Str Tokens").
    headerName: field,
    type: 'numericColumn',
    filter: 'agNumberColumnFilter',
    width: 120,
    valueFormatter: fixed(4),
    cellStyle: (p) => (typeof p.value === 'number' ? gradientStyle(p.value, range.min, range.max) : null),
    ...extra,
  }
}

/**
 * A numeric column painted symmetrically around zero (white = no effect), for signed scores such as
 * W_E·v or a decomposition's terms, where a red and a blue of the same depth mean the same strength.
 */
export function divergingColumn<T>(field: keyof T & string, rows: readonly T[], extra: ColDef<T> = {}): ColDef<T> {
  const bound = symmetricBound(rows.map((r) => r[field] as unknown as number))
  return gradientColumn(field, rows, { cellStyle: (p) => (typeof p.value === 'number' ? gradientStyle(p.value, -bound, bound) : null), ...extra })
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
    onCellClicked: (e: CellClickedEvent<T>) => {
      const target = e.event?.target as Element | null | undefined
      if (e.data && target?.closest('.token-link')) onTrace(e.data)
    },
  }
}

type SeedRow = Omit<ActivationRow, 'activation'>

/**
 * The seed's token table without its value column: str_tokens, unique_token, context, batch, pos, label.
 * `corpusRows`: the rows are corpus tokens (`batch` is their sequence), not a prompt's.
 */
export function seedColumns<T extends SeedRow>(onTrace?: (row: T) => void, corpusRows = false): ColDef<T>[] {
  const sampleOf = corpusRows ? (r: SeedRow) => r.batch : undefined
  const seed: ColDef<SeedRow>[] = [
    { field: 'str_tokens', headerName: 'str_tokens', width: 120, cellClass: 'mono', ...(onTrace ? traceableToken(onTrace as (row: SeedRow) => void, undefined, sampleOf) : {}) },
    { field: 'unique_token', headerName: 'unique_token', width: 130, cellClass: 'mono' },
    { field: 'context', headerName: 'context', flex: 1, minWidth: 260, cellClass: 'mono', tooltipField: 'context' },
    { field: 'batch', headerName: 'batch', width: 80, type: 'numericColumn', filter: 'agNumberColumnFilter' },
    { field: 'pos', headerName: 'pos', width: 70, type: 'numericColumn', filter: 'agNumberColumnFilter' },
    { field: 'label', headerName: 'label', width: 90 },
  ]
  return seed as unknown as ColDef<T>[]
}

export interface TokenTableOptions<T> {
  /** Makes the str_tokens cell a "trace here" button. */
  onTrace?: (row: T) => void
  /** The rows are corpus tokens (see seedColumns). */
  corpusRows?: boolean
}

/** The seed's token table: str_tokens, unique_token, context, batch, pos, label, and the value column. */
export function activationColumns<T extends ActivationRow = ActivationRow>(rows: readonly T[], extra: ColDef<T>[] = [], opts: TokenTableOptions<T> = {}): ColDef<T>[] {
  return [...extra, ...seedColumns<T>(opts.onTrace, opts.corpusRows), gradientColumn<T>('activation', rows, { sort: 'desc' })]
}

/**
 * The same table with an activation score (resid_mid·v) in place of the activation. `rows` set the colour
 * scale: pass every row the scale should span (e.g. a corpus's top and bottom rows for both their grids).
 */
export function scoreColumns<T extends SeedRow & { score: number }>(
  rows: readonly T[],
  opts: TokenTableOptions<T> & { /** How the score column is sorted at first (highest first). */ sort?: 'asc' | 'desc' } = {},
): ColDef<T>[] {
  return [...seedColumns<T>(opts.onTrace, opts.corpusRows), gradientColumn<T>('score', rows, { sort: opts.sort ?? 'desc' })]
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
