// The loopback bridge: the built renderer and the IPC handler table over HTTP, so the workbench runs in
// a browser (a display-less GPU box through an SSH tunnel, or the e2e test). It binds 127.0.0.1 only;
// the Host and Origin checks stop a web page on another origin from reaching it through DNS rebinding
// or a cross-site request, and the per-launch token (./token.ts) stops another user of the machine,
// since anything that reaches dispatch can read and write files as the serving user. Every request is
// hostile: nothing a client sends can throw out of the request callback.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readFile, stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'
import type { AddressInfo } from 'node:net'
import { hasToken, launchUrl, newServeToken, tokenProblem } from './token'

/** Same policy as renderer/index.html's meta tag; ag-grid's theming API injects <style> elements. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** Handles one call and returns the contract's envelope ({ok:true,value} | {ok:false,error}). */
export type Dispatch = (channel: string, payload: unknown) => Promise<unknown>
/** Registers a listener for progress pushes; returns the unsubscribe function. */
export type Subscribe = (listener: (event: string, payload: unknown) => void) => () => void

export interface ServeOptions {
  /** The bundle the page opens first (shown to the renderer through GET /api/host). */
  bundleDir?: string
  /** 0 picks a free port. */
  port: number
  dispatch: Dispatch
  subscribe: Subscribe
  /** The built renderer (electron-vite's out/renderer). */
  rendererDir: string
  /** The credential every /api request must carry; a random 256-bit one when absent. */
  token?: string
}

export interface RunningServer {
  /** http://127.0.0.1:PORT/, without the token. */
  url: string
  /** The address to open in a browser: `url` with `?token=`. */
  launchUrl: string
  token: string
  port: number
  close(): Promise<void>
}

const MAX_BODY_BYTES = 16 * 1024 * 1024
/** Far above any real path or query; Node itself refuses request heads over 16 kB. */
const MAX_URL_LENGTH = 8192
/** Channel names are `domain.verb` (common/contract/); anything else never reaches dispatch. */
const CHANNEL_NAME = /^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*$/
const MAX_CHANNEL_LENGTH = 100
/** Messages of handler bugs are shown as they are, but never longer than this. */
const MAX_MESSAGE_LENGTH = 200
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]'])

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
}

/** True when a Host header names this loopback server (any other name is a rebinding attempt). */
export function isLoopbackHost(hostHeader: string | undefined, port: number): boolean {
  if (!hostHeader) return false
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim().toLowerCase())
  if (!m) return false
  return LOOPBACK_HOSTS.has(m[1]) && Number(m[2] ?? 80) === port
}

export function isLoopbackOrigin(origin: string, port: number): boolean {
  try {
    const u = new URL(origin)
    return u.protocol === 'http:' && isLoopbackHost(u.host, port)
  } catch {
    return false
  }
}

function setCommonHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY)
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Referrer-Policy', 'no-referrer')
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin')
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin')
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers })
  res.end(text)
}

function errorBody(code: string, message: string) {
  return { ok: false, error: { code, message } }
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<string> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.reject(new BodyTooLarge())
  // Events rather than for-await: leaving a for-await loop destroys the socket before the 413 is sent.
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk)
      req.off('data', onData)
      req.pause()
      reject(new BodyTooLarge())
    }
    req.on('data', onData)
    req.once('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')))
    req.once('error', reject)
    req.once('close', () => reject(new Error('the client went away')))
  })
}

function capped(text: string): string {
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH)}…` : text
}

/** decodeURIComponent without its URIError: null for bad percent-encoding (`%ZZ`, `%E0`, a lone `%`). */
function decodePath(path: string): string | null {
  try {
    return decodeURIComponent(path)
  } catch {
    return null
  }
}

async function serveStatic(rendererDir: string, urlPath: string, res: ServerResponse): Promise<void> {
  let rel = decodePath(urlPath)
  if (rel === null || rel.includes('\0')) return sendJson(res, 400, errorBody('bad_path', 'malformed URL'))
  if (rel === '/' || rel === '') rel = '/index.html'
  const root = resolve(rendererDir)
  const file = normalize(join(root, rel))
  if (file !== root && !file.startsWith(root + sep)) return sendJson(res, 403, errorBody('forbidden', 'outside the renderer'))
  let body: Buffer
  try {
    const info = await stat(file)
    if (!info.isFile()) throw new Error('not a file')
    body = await readFile(file)
  } catch {
    return sendJson(res, 404, errorBody('not_found', 'no such file'))
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    // Hashed assets never change; index.html must be re-read after a rebuild.
    'Cache-Control': rel.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
  })
  res.end(body)
}

function openEventStream(req: IncomingMessage, res: ServerResponse, subscribe: Subscribe): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
  })
  // A push must never throw into the job that emitted it: a closed stream or an unserializable payload
  // only loses that one message.
  const send = (text: string) => {
    if (!res.destroyed && !res.writableEnded) res.write(text)
  }
  send(': connected\n\n')
  const unsubscribe = subscribe((event, payload) => {
    try {
      send(`data: ${JSON.stringify({ event, payload })}\n\n`)
    } catch {
      // dropped; the job's end event still arrives
    }
  })
  // Proxies and SSH tunnels drop idle connections; a comment line every 15 s keeps the stream open.
  const keepAlive = setInterval(() => send(': keep-alive\n\n'), 15_000)
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    clearInterval(keepAlive)
    unsubscribe()
  }
  req.on('close', close)
  res.on('close', close)
  res.on('error', close)
}

async function handleApiCall(req: IncomingMessage, res: ServerResponse, channel: string, opts: ServeOptions) {
  if (req.method !== 'POST') return sendJson(res, 405, errorBody('method', 'use POST'), { Allow: 'POST' })
  // A JSON content type cannot be sent cross-origin without a CORS preflight, which this server never
  // grants; together with the Origin check this rules out cross-site request forgery.
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    return sendJson(res, 415, errorBody('content_type', 'expected application/json'))
  }
  let payload: unknown
  try {
    const text = await readBody(req)
    payload = text.length === 0 ? undefined : JSON.parse(text)
  } catch (err) {
    // The rest of a refused body is not read: close the connection rather than drain it.
    if (err instanceof BodyTooLarge) return sendJson(res, 413, errorBody('too_large', `the body is over ${MAX_BODY_BYTES} bytes`), { Connection: 'close' })
    // JSON.parse's message quotes the input; say only what is wrong.
    return sendJson(res, 400, errorBody('bad_request', 'the body is not valid JSON'))
  }
  try {
    sendJson(res, 200, await opts.dispatch(channel, payload))
  } catch (err) {
    // dispatch returns errors as data; a throw is a bug in a handler, still reported as data.
    sendJson(res, 200, errorBody('internal', capped(String((err as Error)?.message ?? err))))
  }
}

/** Everything under /api/: the Origin check, then the token, then the route. */
async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, query: string, opts: ServeOptions, token: string) {
  const events = path === '/api/events'
  if (!hasToken(req, query, token, events)) {
    return sendJson(res, 401, errorBody('unauthorized', 'open the URL printed by feature-tracer serve, with its ?token='), {
      'WWW-Authenticate': 'Bearer',
    })
  }
  if (events || path === '/api/host') {
    if (req.method !== 'GET') return sendJson(res, 405, errorBody('method', 'use GET'), { Allow: 'GET' })
    if (events) return openEventStream(req, res, opts.subscribe)
    return sendJson(res, 200, { kind: 'serve', bundleDir: opts.bundleDir ?? null })
  }
  const channel = decodePath(path.slice('/api/'.length))
  if (channel === null || channel.length === 0 || channel.length > MAX_CHANNEL_LENGTH || !CHANNEL_NAME.test(channel)) {
    return sendJson(res, 400, errorBody('bad_path', 'not a channel name'))
  }
  return handleApiCall(req, res, channel, opts)
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: ServeOptions, port: number, token: string): Promise<void> {
  setCommonHeaders(res)
  if (!isLoopbackHost(req.headers.host, port)) {
    return sendJson(res, 421, errorBody('host', 'this server answers on 127.0.0.1 / localhost only'))
  }
  // Browsers send Origin on cross-origin fetches and on every POST; a page of another origin (or an
  // opaque `null` one) gets nothing from any route. The origin is not quoted back.
  const origin = req.headers.origin
  if (origin !== undefined && !isLoopbackOrigin(origin, port)) {
    return sendJson(res, 403, errorBody('origin', 'requests from another origin are refused'))
  }
  const url = req.url ?? ''
  if (url.length > MAX_URL_LENGTH) return sendJson(res, 414, errorBody('bad_path', 'URL too long'))
  // Only origin-form paths: `//host/…` or an absolute URL would be read as another host by URL parsers.
  if (!url.startsWith('/') || url.startsWith('//')) return sendJson(res, 400, errorBody('bad_path', 'malformed URL'))
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  const query = q < 0 ? '' : url.slice(q + 1)
  if (path === '/api' || path.startsWith('/api/')) return handleApi(req, res, path, query, opts, token)
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, errorBody('method', 'GET only'), { Allow: 'GET, HEAD' })
  return serveStatic(opts.rendererDir, path, res)
}

/** The last resort for a bug in this file: answer 500 if nothing was sent yet, else drop the connection. */
function failRequest(res: ServerResponse): void {
  try {
    if (!res.headersSent) sendJson(res, 500, errorBody('internal', 'the server could not answer this request'))
    else res.destroy()
  } catch {
    res.destroy()
  }
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const token = opts.token ?? newServeToken()
  const problem = tokenProblem(token)
  if (problem) throw new Error(`token: ${problem}`)
  let port = opts.port
  const server: Server = createServer((req, res) => {
    // handle() is async, so a throw anywhere in it (sync part included) becomes this rejection.
    handle(req, res, opts, port, token).catch(() => failRequest(res))
  })
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(opts.port, '127.0.0.1', () => resolveListen())
  })
  port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}/`
  return {
    url,
    launchUrl: launchUrl(url, token),
    token,
    port,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}
