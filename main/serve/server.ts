// The loopback bridge: the built renderer and the IPC handler table over HTTP, so the workbench runs in
// a browser (a display-less GPU box through an SSH tunnel, or the e2e test). It binds 127.0.0.1 only;
// the Host and Origin checks stop a web page on another origin from reaching it through DNS rebinding
// or a cross-site POST, since anything that reaches dispatch can read files the bundle points at.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readFile, stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'
import type { AddressInfo } from 'node:net'

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
}

export interface RunningServer {
  url: string
  port: number
  close(): Promise<void>
}

const MAX_BODY_BYTES = 16 * 1024 * 1024
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

function isLoopbackOrigin(origin: string, port: number): boolean {
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

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' })
  res.end(text)
}

function errorBody(code: string, message: string) {
  return { ok: false, error: { code, message } }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new Error('request body too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

async function serveStatic(rendererDir: string, urlPath: string, res: ServerResponse): Promise<void> {
  let rel: string
  try {
    rel = decodeURIComponent(urlPath)
  } catch {
    return sendJson(res, 400, errorBody('bad_path', 'malformed URL'))
  }
  if (rel === '/' || rel === '') rel = '/index.html'
  const root = resolve(rendererDir)
  const file = normalize(join(root, rel))
  if (file !== root && !file.startsWith(root + sep)) return sendJson(res, 403, errorBody('forbidden', 'outside the renderer'))
  try {
    const info = await stat(file)
    if (!info.isFile()) throw new Error('not a file')
    const body = await readFile(file)
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      // Hashed assets never change; index.html must be re-read after a rebuild.
      'Cache-Control': rel.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    })
    res.end(body)
  } catch {
    sendJson(res, 404, errorBody('not_found', `no such file: ${rel}`))
  }
}

function openEventStream(req: IncomingMessage, res: ServerResponse, subscribe: Subscribe): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
  })
  res.write(': connected\n\n')
  const unsubscribe = subscribe((event, payload) => {
    res.write(`data: ${JSON.stringify({ event, payload })}\n\n`)
  })
  // Proxies and SSH tunnels drop idle connections; a comment line every 15 s keeps the stream open.
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000)
  req.on('close', () => {
    clearInterval(keepAlive)
    unsubscribe()
  })
}

async function handleApiCall(req: IncomingMessage, res: ServerResponse, channel: string, opts: ServeOptions, port: number) {
  if (req.method !== 'POST') return sendJson(res, 405, errorBody('method', 'use POST'))
  // A JSON content type cannot be sent cross-origin without a CORS preflight, which this server never
  // grants; together with the Origin check this rules out cross-site request forgery.
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    return sendJson(res, 415, errorBody('content_type', 'expected application/json'))
  }
  const origin = req.headers.origin
  if (origin !== undefined && !isLoopbackOrigin(origin, port)) {
    return sendJson(res, 403, errorBody('origin', `origin not allowed: ${origin}`))
  }
  let payload: unknown
  try {
    const text = await readBody(req)
    payload = text.length === 0 ? undefined : JSON.parse(text)
  } catch (err) {
    return sendJson(res, 400, errorBody('bad_request', (err as Error).message))
  }
  try {
    sendJson(res, 200, await opts.dispatch(channel, payload))
  } catch (err) {
    // dispatch returns errors as data; a throw is a bug in a handler, still reported as data.
    sendJson(res, 200, errorBody('internal', (err as Error).message ?? String(err)))
  }
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  let port = opts.port
  const server: Server = createServer((req, res) => {
    setCommonHeaders(res)
    if (!isLoopbackHost(req.headers.host, port)) {
      return sendJson(res, 421, errorBody('host', 'this server answers on 127.0.0.1 / localhost only'))
    }
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/api/events') return openEventStream(req, res, opts.subscribe)
    if (path === '/api/host') return sendJson(res, 200, { kind: 'serve', bundleDir: opts.bundleDir ?? null })
    if (path.startsWith('/api/')) {
      void handleApiCall(req, res, decodeURIComponent(path.slice('/api/'.length)), opts, port)
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, errorBody('method', 'GET only'))
    void serveStatic(opts.rendererDir, path, res)
  })
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(opts.port, '127.0.0.1', () => resolveListen())
  })
  port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}
