// What the page calls in every host: `window.api` (the preload's, in the Electron window) and the loopback
// bridge's client (renderer/api/host.ts) implement this one interface; types only, plus the two Electron
// IPC channel names the preload and main/index.ts share.
import type { EventName, Events, Invoke } from './contract'

export interface FeatureTracerApi {
  /** One call of the contract; resolves to its envelope ({ok,value} | {ok:false,error}), never rejects. */
  call: Invoke
  /** Listens to a push from main (progress, job ends); returns the function that stops listening. */
  onPush<E extends EventName>(event: E, cb: (payload: Events[E]) => void): () => void
}

/** Every contract call goes through IPC_CALL; every push arrives on IPC_PUSH. */
export const IPC_CALL = 'ft:call'
export const IPC_PUSH = 'ft:push'
