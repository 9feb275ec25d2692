// Messages between main and a host process (main/jobs/process-host.ts ↔ main/jobs/child.ts). A host is
// started with one `init` (which service to run, with what data), answers `ready`, then serves requests
// by id; a request may report progress before its one answer. Errors cross as the contract's IpcError.
import type { IpcError } from '../../common/errors'

export type ToHost =
  | { type: 'init'; kind: string; data: unknown }
  | { type: 'request'; id: number; op: string; payload: unknown }
  /** The request is no longer wanted: the host stops it at its next step and need not answer. */
  | { type: 'cancel'; id: number }

export type FromHost =
  | { type: 'ready'; info: unknown }
  | { type: 'init-error'; error: IpcError }
  | { type: 'progress'; id: number; progress: unknown }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: IpcError }
