// ag-grid is modular: registering only what the grids use keeps the bundle small and makes a missing
// feature fail loudly (ValidationModule names the module) instead of silently doing nothing.
import {
  CellStyleModule,
  ClientSideRowModelApiModule,
  ClientSideRowModelModule,
  ColumnApiModule,
  ColumnAutoSizeModule,
  CsvExportModule,
  ExternalFilterModule,
  GridStateModule,
  ModuleRegistry,
  NumberFilterModule,
  QuickFilterModule,
  RenderApiModule,
  RowApiModule,
  RowStyleModule,
  TextFilterModule,
  TooltipModule,
  ValidationModule,
  themeQuartz,
} from 'ag-grid-community'

let registered = false

export function registerGridModules(): void {
  if (registered) return
  registered = true
  ModuleRegistry.registerModules([
    ClientSideRowModelModule,
    ClientSideRowModelApiModule,
    RowApiModule,
    ColumnApiModule,
    ColumnAutoSizeModule,
    CsvExportModule,
    ExternalFilterModule,
    GridStateModule,
    NumberFilterModule,
    TextFilterModule,
    QuickFilterModule,
    // refreshCells: a grid whose colour scale changes under the rows it shows (a trace's batch grid).
    RenderApiModule,
    CellStyleModule,
    RowStyleModule,
    TooltipModule,
    ...(import.meta.env.DEV ? [ValidationModule] : []),
  ])
}

/** Compact rows: a researcher scans hundreds of them; the gradient cells carry the colour. */
export const gridTheme = themeQuartz.withParams({
  fontFamily: 'inherit',
  fontSize: 12,
  headerFontSize: 12,
  headerFontWeight: 600,
  rowHeight: 24,
  headerHeight: 28,
  spacing: 4,
  cellHorizontalPadding: 8,
  accentColor: '#2f6feb',
  borderColor: '#d8dde6',
  headerBackgroundColor: '#f3f5f8',
  oddRowBackgroundColor: '#fbfcfd',
  wrapperBorderRadius: 4,
})
