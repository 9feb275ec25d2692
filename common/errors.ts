// Errors cross IPC as data (STYLE §3): every handler's failure becomes {code, message}. FtError is the one
// error handlers throw on purpose; any other error that knows its own IPC form (a BundleError) says so
// through `toIpc`; anything else is 'internal'. Messages are capped: no input comes back whole.
import { capText } from './text'

/** Errors cross IPC as data; `code` is stable and machine-readable, `message` is for people. */
export type ErrorCode =
  | 'invalid_request' // the payload failed its schema; message names the field
  | 'unknown_channel'
  | 'not_found' // e.g. a feature id ≥ d_sae, a missing session file, an unknown job id
  | 'no_bundle' // no bundle is open, or the folder is not a valid bundle
  | 'bundle_invalid'
  | 'cache_missing' // the activation cache has not been built (or not finished)
  | 'cache_stale' // the cache was built for other model/SAE/token hashes or another schema version
  | 'cache_corrupt' // the cache file cannot be read (damaged, truncated, not SQLite): rebuild moves it aside
  | 'cache_foreign' // the file at the cache path is not this app's cache: it is never touched
  | 'busy' // a cache build is already running
  | 'session_corrupt'
  | 'session_future_version'
  | 'io'
  | 'unsupported' // this host cannot do it (e.g. a native file dialog in serve mode): fall back in the page
  | 'internal'

export interface IpcError {
  code: ErrorCode
  message: string
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: IpcError }

export class FtError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'FtError'
  }
}

/** An error of a lower floor that knows how it crosses IPC (without common/ importing that floor). */
export interface IpcMappable {
  toIpc(): IpcError
}

function isIpcMappable(error: unknown): error is IpcMappable {
  return typeof error === 'object' && error !== null && typeof (error as Partial<IpcMappable>).toIpc === 'function'
}

export function toIpcError(error: unknown): IpcError {
  if (error instanceof FtError) return { code: error.code, message: capText(error.message) }
  if (isIpcMappable(error)) {
    const e = error.toIpc()
    return { code: e.code, message: capText(e.message) }
  }
  const message = error instanceof Error ? error.message : String(error)
  return { code: 'internal', message: capText(message) }
}
