// One download path for both hosts: in a browser it is a file download; in Electron, whose default
// will-download behaviour asks where to save, it is the native save dialog.

/** A file name that every OS accepts. */
export function safeFileName(name: string): string {
  return name.replace(/[\\/:*?"<>|\s]+/g, '_').replace(/^_+|_+$/g, '') || 'export'
}

/**
 * Undoes common/text.ts's visibleToken: ·, ↩, → and a control character's <0xNN> back to the characters they
 * stand for (a <0x80>…<0xFF> is a byte of a split character, not a character: it stays as written).
 */
export function rawTokenText(display: string): string {
  return display
    .replace(/·/g, ' ')
    .replace(/↩/g, '\n')
    .replace(/→/g, '\t')
    .replace(/<0x([01][0-9A-F]|7F)>/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

/**
 * Saves `csv` as UTF-8, without a byte-order mark unless `bom` (the "CSV with BOM" setting, for Excel on
 * Windows, which otherwise reads UTF-8 as the local code page); Python's csv, pandas and R want none.
 */
export function downloadCsv(fileName: string, csv: string, bom = false): void {
  const blob = new Blob(bom ? ['\ufeff', csv] : [csv], { type: 'text/csv;charset=utf-8' })
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = safeFileName(fileName).replace(/(\.csv)?$/, '.csv')
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
