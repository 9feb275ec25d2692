// Native file dialogs (the Electron window's); other hosts answer `unsupported` and the page asks for a path.
import { z } from 'zod'
import { channel } from './channel'

/** What a native file dialog picks: a bundle folder, a session file, or a CSV file. */
export const dialogTarget = z.enum(['bundle', 'session', 'csv'])
export type DialogTarget = z.infer<typeof dialogTarget>

export const dialogChannels = {
  /**
   * A native dialog (Electron) that picks an existing bundle folder or file; `path` is null when the user
   * cancelled. Hosts without one (serve mode, the CLI) answer `unsupported`: the page asks for a typed path.
   */
  'dialog.open': channel<{ path: string | null }>()(
    z.strictObject({ target: dialogTarget, title: z.string().max(200).optional(), defaultPath: z.string().max(4096).optional() }),
  ),
  /** A native save dialog for a session or CSV file; as 'dialog.open'. */
  'dialog.save': channel<{ path: string | null }>()(
    z.strictObject({ target: dialogTarget.exclude(['bundle']), title: z.string().max(200).optional(), defaultPath: z.string().max(4096).optional() }),
  ),
}
