// Column definitions shared by the grids, named as the seed notebook's tables name them.
import type { ColDef, ValueFormatterParams } from 'ag-grid-community'
import type { ActivationRow } from '../../../main/ipc/contract'
import { columnRange, gradientStyle } from './coolwarm'

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

/** The seed's token table: str_tokens, unique_token, context, batch, pos, label, and the value column. */
export function activationColumns<T extends ActivationRow = ActivationRow>(rows: readonly T[], extra: ColDef<T>[] = []): ColDef<T>[] {
  const seed: ColDef<ActivationRow>[] = [
    { field: 'str_tokens', headerName: 'str_tokens', width: 120, cellClass: 'mono' },
    { field: 'unique_token', headerName: 'unique_token', width: 130, cellClass: 'mono' },
    { field: 'context', headerName: 'context', flex: 1, minWidth: 260, cellClass: 'mono', tooltipField: 'context' },
    { field: 'batch', headerName: 'batch', width: 80, type: 'numericColumn', filter: 'agNumberColumnFilter' },
    { field: 'pos', headerName: 'pos', width: 70, type: 'numericColumn', filter: 'agNumberColumnFilter' },
    { field: 'label', headerName: 'label', width: 90 },
    gradientColumn<ActivationRow>('activation', rows, { sort: 'desc' }),
  ]
  return [...extra, ...(seed as unknown as ColDef<T>[])]
}

export function activationRowId(r: ActivationRow): string {
  return r.label
}
