// Sessions: main owns the file format (versioning, atomic writes); the UI state inside is opaque to it.
import { z } from 'zod'
import type { MovedAside } from './app'
import { channel, empty, userPath } from './channel'

export const sessionTab = z.looseObject({ id: z.string(), kind: z.string() })
export const sessionState = z.object({
  tabs: z.array(sessionTab).default([]),
  activeTab: z.string().nullable().default(null),
  /** Grid sort/filter/column state, keyed by grid id (ag-grid's getState()). */
  grids: z.record(z.string(), z.unknown()).default({}),
  /** Anything else the UI wants back. */
  ui: z.record(z.string(), z.unknown()).default({}),
})
export type SessionState = z.infer<typeof sessionState>

export const SESSION_FORMAT = 'feature-tracer-session'
/** The newest session file version this app reads and writes. */
export const SESSION_VERSION = 1

/** A .ftsession file as main writes and reads it (main/session/file.ts). */
export const sessionFileSchema = z.object({
  format: z.literal(SESSION_FORMAT),
  version: z.number().int().positive(),
  savedAt: z.string().max(100),
  bundle: z.object({ path: z.string().max(4096), hash: z.string().max(200) }),
  state: sessionState,
  /** Labels and notes by feature id (only ids the bundle's SAE has are imported). */
  labels: z.record(z.string().regex(/^\d{1,9}$/, 'a feature id'), z.object({ label: z.string().max(1000), notes: z.string().max(100_000) })).default({}),
})
export type SessionFile = z.infer<typeof sessionFileSchema>

export interface SessionLoaded {
  path: string
  session: SessionFile
  /**
   * Labels/notes from the file that were copied into the per-bundle store (those the store lacked); 0 when
   * the session belongs to another bundle than the open one (they are imported once that bundle is open).
   */
  labelsImported: number
  /** Entries skipped because their feature id does not exist in the SAE. */
  labelsSkipped: number
}

export const sessionChannels = {
  /**
   * Write a .ftsession file (atomically); labels and notes of the open bundle go in with the UI state. The
   * path is absolute and ends in .ftsession; an existing file is replaced only if it is a session.
   */
  'session.save': channel<{ path: string; savedAt: string }>()(z.strictObject({ path: userPath, state: sessionState })),
  /** Read a .ftsession file; labels are imported when it belongs to the open bundle. */
  'session.load': channel<SessionLoaded>()(z.strictObject({ path: userPath })),
  /**
   * The open bundle's autosave slot: its session (null when there is none), or, when the file there cannot
   * be read, where it was moved; and the folder a new session file is suggested in.
   */
  'session.autosaved': channel<{ loaded: SessionLoaded | null; movedAside: MovedAside | null; defaultDir: string }>()(empty),
  /** Save to the open bundle's autosave slot in the user-data folder. */
  'session.autosave': channel<{ path: string; savedAt: string; movedAside: MovedAside | null }>()(z.strictObject({ state: sessionState })),
}
