// The one error type handlers throw on purpose; dispatch turns it into `{ok:false,error:{code,message}}`
// with the code unchanged. A bundle that fails to load keeps its own message; anything else that
// escapes a handler becomes code 'internal'.
import { BundleError } from '../bundle/errors'
import { capText } from '../files/safe-io'
import type { ErrorCode, IpcError } from './contract'

export class FtError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'FtError'
  }
}

/** Every message is capped: no input, however long, comes back whole inside an error. */
export function toIpcError(error: unknown): IpcError {
  if (error instanceof FtError) return { code: error.code, message: capText(error.message) }
  if (error instanceof BundleError) {
    return { code: error.code === 'not-found' ? 'no_bundle' : 'bundle_invalid', message: capText(error.message) }
  }
  const message = error instanceof Error ? error.message : String(error)
  return { code: 'internal', message: capText(message) }
}
