// Serve mode's credential: one random token per launch (Jupyter's `?token=` URL), required on every
// /api request. The loopback interface is shared by every user of the machine, and the Host/Origin checks
// only stop web pages; the token is what stops another local account from calling the handler table.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** 32 random bytes: 256 bits, 43 base64url characters. */
export function newServeToken(): string {
  return randomBytes(32).toString('base64url')
}

export const MIN_TOKEN_LENGTH = 32
const MAX_TOKEN_LENGTH = 256
const TOKEN_CHARS = /^[A-Za-z0-9_-]+$/

/** Why a token chosen by the user (--token, FT_SERVE_TOKEN) is unfit, or null when it is fit. Never quotes it. */
export function tokenProblem(token: string): string | null {
  if (token.length < MIN_TOKEN_LENGTH) return `a token needs at least ${MIN_TOKEN_LENGTH} characters (this one has ${token.length})`
  if (token.length > MAX_TOKEN_LENGTH) return `a token has at most ${MAX_TOKEN_LENGTH} characters (this one has ${token.length})`
  if (!TOKEN_CHARS.test(token)) return 'a token may only use the characters A-Z a-z 0-9 _ -'
  return null
}

/**
 * The token the user fixed, from --token or else FT_SERVE_TOKEN; undefined for a random one. The error
 * names the source and the rule, never the value.
 */
export function chosenToken(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const [token, source] = flag !== undefined ? [flag, '--token'] : [env.FT_SERVE_TOKEN || undefined, 'FT_SERVE_TOKEN']
  if (token === undefined) return undefined
  const problem = tokenProblem(token)
  if (problem) throw new Error(`${source}: ${problem}; e.g. FT_SERVE_TOKEN=$(openssl rand -hex 32)`)
  return token
}

/** The address to open: the page takes the token from its own URL, keeps it, and drops it from the bar. */
export function launchUrl(baseUrl: string, token: string): string {
  return `${baseUrl}?token=${token}`
}

/**
 * A comparison whose time does not depend on where the strings differ. Comparing SHA-256 digests gives
 * timingSafeEqual the equal-length buffers it needs, so a token of another length is no special case.
 */
function sameToken(candidate: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()
  return timingSafeEqual(digest(candidate), digest(expected))
}

/**
 * True when the request carries the token: `Authorization: Bearer <token>` always; `?token=` only where
 * `allowQuery` (the event stream, which a browser's EventSource opens without headers).
 */
export function hasToken(req: IncomingMessage, query: string, expected: string, allowQuery: boolean): boolean {
  const header = req.headers.authorization
  if (header !== undefined) {
    const m = /^Bearer +(\S+) *$/i.exec(header)
    if (m && sameToken(m[1], expected)) return true
  }
  if (!allowQuery) return false
  // URLSearchParams decodes leniently: bad percent-encoding cannot throw here.
  const fromQuery = new URLSearchParams(query).get('token')
  return fromQuery !== null && sameToken(fromQuery, expected)
}
