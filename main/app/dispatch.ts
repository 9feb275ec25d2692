// The transport-agnostic door into main: validate a payload against the contract, run the handler,
// and turn every failure into error data. Electron's ipcMain (preload), the loopback HTTP bridge
// (serve) and the CLI all call `dispatch`; nothing else looks at raw payloads.
import { describeZodError } from '../../common/zod-error'
import { contract, type Channel, type Invoke, type RequestOf, type ResponseOf, type Result } from '../../common/contract'
import { FtError, toIpcError } from '../../common/errors'

export type Handler<C extends Channel> = (request: RequestOf<C>) => ResponseOf<C> | Promise<ResponseOf<C>>

/** One handler per channel: a missing or extra entry, or a wrong response type, fails the type check. */
export type HandlerTable = { [C in Channel]: Handler<C> }

export type RawDispatch = (channel: string, payload: unknown) => Promise<Result<unknown>>

function isChannel(name: string): name is Channel {
  return Object.prototype.hasOwnProperty.call(contract, name)
}

export function createDispatch(table: HandlerTable): { dispatch: RawDispatch; invoke: Invoke } {
  const dispatch: RawDispatch = async (channel, payload) => {
    if (typeof channel !== 'string' || !isChannel(channel)) {
      return { ok: false, error: { code: 'unknown_channel', message: `unknown channel ${JSON.stringify(String(channel).slice(0, 80))}` } }
    }
    // A missing payload means "no arguments" for channels whose fields are all optional.
    const parsed = contract[channel].request.safeParse(payload === undefined ? {} : payload)
    if (!parsed.success) {
      return {
        ok: false,
        error: { code: 'invalid_request', message: `${channel}: ${describeZodError(parsed.error)}` },
      }
    }
    try {
      const handler = table[channel] as (request: unknown) => unknown
      return { ok: true, value: await handler(parsed.data) }
    } catch (error) {
      return { ok: false, error: toIpcError(error) }
    }
  }
  const invoke = dispatch as Invoke
  return { dispatch, invoke }
}

/** For callers that prefer exceptions (CLI, tests): unwrap a Result or throw an FtError. */
export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value
  throw new FtError(result.error.code, result.error.message)
}
