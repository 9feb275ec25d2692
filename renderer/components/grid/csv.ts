// One download path for both hosts: in a browser it is a file download; in Electron, whose default
// will-download behaviour asks where to save, it is the native save dialog.

/** A file name that every OS accepts. */
export function safeFileName(name: string): string {
  return name.replace(/[\\/:*?"<>|\s]+/g, '_').replace(/^_+|_+$/g, '') || 'export'
}

export function downloadCsv(fileName: string, csv: string): void {
  // The BOM makes spreadsheet programs read the file as UTF-8 (tokens such as ·, ↩ and → are not ASCII).
  const blob = new Blob(['\ufeff', csv], { type: 'text/csv;charset=utf-8' })
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = safeFileName(fileName).replace(/(\.csv)?$/, '.csv')
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
