// Typed calls for the stores: unwraps the contract's envelope into a value or a thrown ApiError, so
// that error codes survive the boundary (Electron's invoke would keep only the message).
import type { Channel, ErrorCode, EventName, Events, RequestIn, ResponseOf } from '../../common/contract'
import type { Host } from './host'

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly channel: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

let host: Host | null = null

export function installHost(h: Host): void {
  host = h
}

export function currentHost(): Host {
  if (!host) throw new Error('renderer/api: installHost() was not called')
  return host
}

/**
 * Calls one channel. Payloads are cloned to plain JSON first: Vue's reactive proxies cannot cross
 * Electron's structured clone, and the HTTP bridge would serialize them anyway.
 */
export async function call<C extends Channel>(channel: C, payload: RequestIn<C>): Promise<ResponseOf<C>> {
  const plain = JSON.parse(JSON.stringify(payload ?? {})) as RequestIn<C>
  const result = await currentHost().call(channel, plain)
  if (result.ok) return result.value as ResponseOf<C>
  throw new ApiError(result.error.code, result.error.message, channel)
}

export function onPush<E extends EventName>(event: E, cb: (payload: Events[E]) => void): () => void {
  return currentHost().onPush(event, cb)
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message
  if (err instanceof Error) return err.message
  return String(err)
}
