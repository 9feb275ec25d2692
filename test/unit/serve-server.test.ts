import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isLoopbackHost, startServer, type RunningServer } from '../../main/serve/server'

let server: RunningServer
let push: ((event: string, payload: unknown) => void) | null = null
const calls: Array<[string, unknown]> = []

function http(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ft-serve-'))
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>')
  server = await startServer({
    port: 0,
    rendererDir: dir,
    dispatch: async (channel, payload) => {
      calls.push([channel, payload])
      return { ok: true, value: { echo: payload } }
    },
    subscribe: (listener) => {
      push = listener
      return () => (push = null)
    },
  })
})
afterAll(() => server.close())

describe('loopback bridge', () => {
  it('accepts only loopback Host headers on its own port', () => {
    expect(isLoopbackHost('127.0.0.1:8080', 8080)).toBe(true)
    expect(isLoopbackHost('localhost:8080', 8080)).toBe(true)
    expect(isLoopbackHost('[::1]:8080', 8080)).toBe(true)
    expect(isLoopbackHost('evil.example:8080', 8080)).toBe(false)
    expect(isLoopbackHost('127.0.0.1:9090', 8080)).toBe(false)
    expect(isLoopbackHost(undefined, 8080)).toBe(false)
  })

  it('serves the renderer with the CSP header and refuses a rebinding Host', async () => {
    const ok = await http('/')
    expect(ok.status).toBe(200)
    expect(String(ok.headers['content-security-policy'])).toContain("default-src 'self'")
    expect(String(ok.headers['content-security-policy'])).not.toContain('unsafe-eval')
    const bad = await http('/', { headers: { Host: `attacker.example:${server.port}` } })
    expect(bad.status).toBe(421)
    expect((await http('/../../etc/passwd')).status).not.toBe(200)
  })

  it('answers POST /api/<channel> through dispatch, JSON only, same origin only', async () => {
    const res = await http('/api/feature.get', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"id":3}' })
    expect(JSON.parse(res.body)).toEqual({ ok: true, value: { echo: { id: 3 } } })
    expect(calls.at(-1)).toEqual(['feature.get', { id: 3 }])
    expect((await http('/api/feature.get', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' })).status).toBe(415)
    const cross = await http('/api/feature.get', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: 'https://evil.example' },
      body: '{}',
    })
    expect(cross.status).toBe(403)
    const broken = await http('/api/x', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' })
    expect(JSON.parse(broken.body).ok).toBe(false)
  })

  it('relays pushes as server-sent events', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/api/events' }, (res) => {
        expect(res.headers['content-type']).toContain('text/event-stream')
        let buf = ''
        res.on('data', (c) => {
          buf += c
          if (buf.includes('cache.progress')) {
            req.destroy()
            resolve(buf)
          }
        })
        setTimeout(() => push?.('cache.progress', { doneTokens: 1 }), 20)
      })
      req.on('error', reject)
      req.end()
    })
    expect(got).toContain('data: {"event":"cache.progress","payload":{"doneTokens":1}}')
  })
})
