// The contract's building blocks: a channel (request schema + phantom response type) and the small
// shapes several domains share. zod and plain types only: the renderer type-checks every contract file.
import { z } from 'zod'

/** A channel: the request's zod schema plus a phantom of the response type. */
export interface ChannelDef<Req extends z.ZodType, Res> {
  readonly request: Req
  /** Type-level only; never set at runtime. Wrapped in a tuple so `null`/`undefined` responses survive. */
  readonly __response?: [Res]
}

export const channel =
  <Res>() =>
  <Req extends z.ZodType>(request: Req): ChannelDef<Req, Res> => ({ request })


export const featureId = z.number().int().nonnegative()
export const nonNegInt = z.number().int().nonnegative()
export const empty = z.strictObject({})
/** A path the user typed or picked: absolute (checked by the handler), at most PATH_MAX long. */
export const userPath = z.string().min(1).max(4096)
