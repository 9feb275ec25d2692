// The type of `window.api`, derived from the IPC contract. Types only, so that the renderer's type check
// can import it without pulling in Electron or Node.
import type { EventName, Events, Invoke } from '../main/ipc/contract'

export interface FeatureTracerApi {
  /** One call of the contract; resolves to its envelope ({ok,value} | {ok:false,error}), never rejects. */
  call: Invoke
  /** Listens to a push from main (progress, job ends); returns the function that stops listening. */
  onPush<E extends EventName>(event: E, cb: (payload: Events[E]) => void): () => void
}

/** The Electron IPC channels the preload and main/index.ts share; every contract call goes through them. */
export const IPC_CALL = 'ft:call'
export const IPC_PUSH = 'ft:push'
