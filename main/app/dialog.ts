// Native file dialogs as channels (issue 4). The Electron shell (main/index.ts) injects a FileDialog built
// on Electron's dialog module; serve mode and the CLI have none, and dialog.open/dialog.save then answer
// 'unsupported' as data so the page falls back to its typed-path field. This module never imports
// Electron, so the handler table stays plain Node and testable.
import type { DialogTarget } from '../../common/contract'
import type { HandlerTable } from './dispatch'
import { FtError } from '../../common/errors'

export interface FileDialogRequest {
  mode: 'open' | 'save'
  target: DialogTarget
  title: string
  defaultPath?: string
}

export interface FileDialog {
  /** The chosen path, or null when the user cancelled. */
  pick(req: FileDialogRequest): Promise<string | null>
}

const TITLES: Record<FileDialogRequest['mode'], Record<DialogTarget, string>> = {
  open: { bundle: 'Open a bundle folder', session: 'Open a session', csv: 'Open a CSV file' },
  save: { bundle: 'Choose a bundle folder', session: 'Save the session', csv: 'Export to CSV' },
}

const FILTERS: Record<DialogTarget, { name: string; extensions: string[] }[]> = {
  bundle: [],
  session: [{ name: 'Feature Tracer session', extensions: ['ftsession'] }],
  csv: [{ name: 'CSV', extensions: ['csv'] }],
}

interface DialogOptions {
  title: string
  defaultPath?: string
  filters: { name: string; extensions: string[] }[]
}

function baseOptions(req: FileDialogRequest): DialogOptions {
  return { title: req.title, ...(req.defaultPath ? { defaultPath: req.defaultPath } : {}), filters: FILTERS[req.target] }
}

/** Electron's showOpenDialog options: a folder for a bundle, a file filtered by type otherwise. */
export function openDialogOptions(req: FileDialogRequest): DialogOptions & { properties: ('openFile' | 'openDirectory')[] } {
  return { ...baseOptions(req), properties: [req.target === 'bundle' ? 'openDirectory' : 'openFile'] }
}

/** Electron's showSaveDialog options: the type's filter, and a confirmation before overwriting. */
export function saveDialogOptions(req: FileDialogRequest): DialogOptions & { properties: ('createDirectory' | 'showOverwriteConfirmation')[] } {
  return { ...baseOptions(req), properties: ['createDirectory', 'showOverwriteConfirmation'] }
}

export function createDialogHandlers(dialog: FileDialog | undefined): Pick<HandlerTable, 'dialog.open' | 'dialog.save'> {
  const pick = async (mode: FileDialogRequest['mode'], req: { target: DialogTarget; title?: string; defaultPath?: string }) => {
    if (!dialog) throw new FtError('unsupported', 'this host has no native file dialog (serve mode): type the path instead')
    const path = await dialog.pick({ mode, target: req.target, title: req.title ?? TITLES[mode][req.target], ...(req.defaultPath ? { defaultPath: req.defaultPath } : {}) })
    return { path }
  }
  return {
    'dialog.open': (req) => pick('open', req),
    'dialog.save': (req) => pick('save', req),
  }
}
