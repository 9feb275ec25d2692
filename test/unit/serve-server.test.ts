// The loopback bridge (main/transports/serve/server.ts) as a hostile client sees it: every /api route needs the
// per-launch token and a loopback origin, and no URL, header or body can stop it answering. Loopback
// only, a temp renderer folder, a recording dispatch (no workbench), a few hundred requests in all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contract } from '../../common/contract'
import { isLoopbackHost, isLoopbackOrigin, startServer, type RunningServer } from '../../main/transports/serve/server'
import { chosenToken, launchUrl, newServeToken, tokenProblem } from '../../main/transports/serve/token'

const TOKEN = newServeToken()
const CHANNELS = Object.keys(contract)

let server: RunningServer
let rendererDir: string
let push: ((event: string, payload: unknown) => void) | null = null
const calls: Array<[string, unknown]> = []

interface Reply {
  status: number
  headers: Record<string, unknown>
  body: string
}

function http(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<Reply>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

const auth = (token = TOKEN) => ({ Authorization: `Bearer ${token}` })
const json = { 'Content-Type': 'application/json' }
const post = (path: string, headers: Record<string, string>, body = '{}') => http(path, { method: 'POST', headers: { ...json, ...headers }, body })

/** The status line's code of a request written byte for byte (request targets Node's client would not send). */
function raw(text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => socket.end(text))
    let got = ''
    socket.on('data', (c) => (got += c))
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)))
    socket.on('error', reject)
  })
}

/** Opens the event stream, pushes one event once it is open, and resolves with what arrived (or the status). */
function readEvents(path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
      let buf = ''
      if (res.statusCode !== 200) {
        res.on('data', (c) => (buf += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: buf }))
        return
      }
      expect(res.headers['content-type']).toContain('text/event-stream')
      res.on('data', (c) => {
        buf += c
        if (buf.includes('job.progress')) {
          req.destroy()
          resolve({ status: 200, text: buf })
        }
      })
      setTimeout(() => push?.('job.progress', { doneTokens: 1 }), 20)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The server still does its job: a valid call reaches dispatch. */
async function stillAnswers(): Promise<void> {
  const res = await post('/api/bundle.info', auth())
  expect(res.status).toBe(200)
  expect(calls.at(-1)).toEqual(['bundle.info', {}])
}

beforeAll(async () => {
  rendererDir = mkdtempSync(join(tmpdir(), 'ft-serve-'))
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>t</title>')
  server = await startServer({
    port: 0,
    rendererDir,
    token: TOKEN,
    dispatch: async (channel, payload) => {
      calls.push([channel, payload])
      if ((payload as { crash?: boolean } | undefined)?.crash) throw new Error(`handler bug ${'x'.repeat(100_000)}`)
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
  it('accepts only loopback Host headers and origins on its own port', () => {
    expect(isLoopbackHost('127.0.0.1:8080', 8080)).toBe(true)
    expect(isLoopbackHost('localhost:8080', 8080)).toBe(true)
    expect(isLoopbackHost('[::1]:8080', 8080)).toBe(true)
    expect(isLoopbackHost('evil.example:8080', 8080)).toBe(false)
    expect(isLoopbackHost('127.0.0.1:9090', 8080)).toBe(false)
    expect(isLoopbackHost(undefined, 8080)).toBe(false)
    expect(isLoopbackOrigin('http://127.0.0.1:8080', 8080)).toBe(true)
    expect(isLoopbackOrigin('https://127.0.0.1:8080', 8080)).toBe(false)
    expect(isLoopbackOrigin('null', 8080)).toBe(false)
  })

  it('serves the renderer without a token, with the CSP header, and refuses a rebinding Host', async () => {
    const ok = await http('/')
    expect(ok.status).toBe(200)
    expect(String(ok.headers['content-security-policy'])).toContain("default-src 'self'")
    expect(String(ok.headers['content-security-policy'])).not.toContain('unsafe-eval')
    expect((await http(`/?token=${TOKEN}`)).status).toBe(200)
    const bad = await http('/', { headers: { Host: `attacker.example:${server.port}` } })
    expect(bad.status).toBe(421)
    expect((await post('/api/bundle.info', { ...auth(), Host: `attacker.example:${server.port}` })).status).toBe(421)
    expect((await http('/../../etc/passwd')).status).not.toBe(200)
    const missing = await http(`/${'q'.repeat(300)}.js`)
    expect(missing.status).toBe(404)
    expect(missing.body).not.toContain('qqq')
  })

  it('answers POST /api/<channel> through dispatch, JSON only, with a clean 400 for a bad body', async () => {
    const res = await post('/api/feature.get', auth(), '{"id":3}')
    expect(JSON.parse(res.body)).toEqual({ ok: true, value: { echo: { id: 3 } } })
    expect(calls.at(-1)).toEqual(['feature.get', { id: 3 }])
    expect((await post('/api/feature.get', { ...auth(), 'Content-Type': 'text/plain' })).status).toBe(415)
    expect((await http('/api/feature.get', { headers: auth() })).status).toBe(405)
    const n = calls.length
    for (const body of ['{', '\u0000', '{"id":', `"${'a'.repeat(50_000)}`, Buffer.from([0xff, 0xfe, 0x7b]).toString('latin1')]) {
      const broken = await post('/api/feature.get', auth(), body)
      expect(broken.status).toBe(400)
      expect(JSON.parse(broken.body).ok).toBe(false)
      expect(broken.body.length).toBeLessThan(200)
    }
    expect(calls.length).toBe(n)
    // A body declared over 16 MB is refused before it is read.
    const huge = await http('/api/feature.get', { method: 'POST', headers: { ...json, ...auth(), 'Content-Length': String(17 * 1024 * 1024) }, body: '' }).catch(
      (e: Error) => ({ status: 0, body: e.message }),
    )
    expect([413, 0]).toContain(huge.status)
    await stillAnswers()
  })

  it('reports a handler that throws as data, with its message capped', async () => {
    const res = await post('/api/bundle.info', auth(), '{"crash":true}')
    const body = JSON.parse(res.body)
    expect(body.ok).toBe(false)
    expect(body.error.code).toBe('internal')
    expect(body.error.message.length).toBeLessThanOrEqual(201)
    await stillAnswers()
  })

  it('relays pushes as server-sent events to a stream opened with ?token= or the header', async () => {
    const byQuery = await readEvents(`/api/events?token=${TOKEN}`)
    expect(byQuery.text).toContain('data: {"event":"job.progress","payload":{"doneTokens":1}}')
    expect((await readEvents('/api/events', auth())).text).toContain('job.progress')
    // A payload that cannot be serialized loses that message only; it never throws into the job.
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: `/api/events?token=${TOKEN}` }, () => {
        try {
          expect(() => push?.('job.progress', { n: 1n })).not.toThrow()
          req.destroy()
          resolve()
        } catch (e) {
          reject(e)
        }
      })
      req.on('error', () => resolve())
      req.end()
    })
  })
})

describe('the token', () => {
  it('is random, 256 bits, URL-safe, and printed in the launch URL', async () => {
    expect(TOKEN).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(newServeToken()).not.toBe(TOKEN)
    expect(server.token).toBe(TOKEN)
    expect(server.launchUrl).toBe(`http://127.0.0.1:${server.port}/?token=${TOKEN}`)
    expect(launchUrl('http://127.0.0.1:7373/', 'abc')).toBe('http://127.0.0.1:7373/?token=abc')
    const other = await startServer({ port: 0, rendererDir, dispatch: async () => null, subscribe: () => () => {} })
    try {
      expect(other.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(other.token).not.toBe(TOKEN)
      expect(other.launchUrl).toBe(`${other.url}?token=${other.token}`)
    } finally {
      await other.close()
    }
  })

  it('refuses a chosen token that is short or uses other characters, without quoting it', async () => {
    expect(tokenProblem('a'.repeat(32))).toBeNull()
    expect(tokenProblem('a'.repeat(31))).toMatch(/at least 32/)
    expect(tokenProblem(`${'a'.repeat(32)} b`)).toMatch(/A-Z a-z 0-9 _ -/)
    expect(tokenProblem(`${'a'.repeat(32)}é`)).toMatch(/A-Z/)
    expect(tokenProblem('a'.repeat(257))).toMatch(/at most/)
    await expect(startServer({ port: 0, rendererDir, token: 'short', dispatch: async () => null, subscribe: () => () => {} })).rejects.toThrow(/at least 32/)
    const good = 'k'.repeat(40)
    expect(chosenToken(undefined, {})).toBeUndefined()
    expect(chosenToken(good, { FT_SERVE_TOKEN: 'ignored' })).toBe(good)
    expect(chosenToken(undefined, { FT_SERVE_TOKEN: good })).toBe(good)
    expect(chosenToken(undefined, { FT_SERVE_TOKEN: '' })).toBeUndefined()
    expect(() => chosenToken('secret-but-short', {})).toThrow(/^--token: a token needs at least 32/)
    expect(() => chosenToken('secret-but-short', {})).not.toThrow(/secret-but-short/)
    expect(() => chosenToken(undefined, { FT_SERVE_TOKEN: `${good};rm -rf` })).toThrow(/^FT_SERVE_TOKEN: .*A-Z a-z/)
  })

  it('lets every contract channel through to dispatch with the right token', async () => {
    expect(CHANNELS.length).toBeGreaterThan(10)
    for (const channel of CHANNELS) {
      const res = await post(`/api/${channel}`, auth())
      expect(res.status, channel).toBe(200)
      expect(calls.at(-1)).toEqual([channel, {}])
    }
    expect((await post('/api/bundle.info', { Authorization: `bearer ${TOKEN}` })).status).toBe(200)
  })

  it('answers 401 without the right token on every channel, the event stream and /api/host, and never dispatches', async () => {
    const n = calls.length
    const wrong: Record<string, string>[] = [
      {},
      auth(newServeToken()), // same length, other bytes
      auth(TOKEN.slice(0, -1)), // a prefix
      auth(`${TOKEN}x`), // longer
      auth(''),
      { Authorization: TOKEN }, // no scheme
      { Authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` },
    ]
    for (const channel of CHANNELS) {
      for (const headers of wrong) {
        const res = await post(`/api/${channel}`, headers)
        expect(res.status, `${channel} ${JSON.stringify(headers)}`).toBe(401)
        expect(res.headers['www-authenticate']).toBe('Bearer')
      }
      // The query form is for the event stream only.
      expect((await post(`/api/${channel}?token=${TOKEN}`, {})).status).toBe(401)
    }
    for (const headers of wrong) {
      expect((await http('/api/host', { headers })).status).toBe(401)
      expect((await readEvents('/api/events', headers)).status).toBe(401)
    }
    for (const query of ['', '?token=', `?token=${newServeToken()}`, `?token=${TOKEN}x`, `?token=${TOKEN.slice(1)}`, '?token=%ZZ', `?tok=${TOKEN}`]) {
      expect((await readEvents(`/api/events${query}`)).status, query).toBe(401)
    }
    expect((await http(`/api/host?token=${TOKEN}`)).status).toBe(401)
    expect(calls.length).toBe(n)
    expect(push).toBeNull() // no stream was ever subscribed
    const host = await http('/api/host', { headers: auth() })
    expect(host.status).toBe(200)
    expect(JSON.parse(host.body).kind).toBe('serve')
  }, 60_000)

  it('answers 403 to a foreign Origin on every route, even with the right token', async () => {
    const n = calls.length
    const foreign = [
      'http://evil.example',
      `http://evil.example:${server.port}`,
      `http://127.0.0.1:${server.port === 65535 ? 1 : server.port + 1}`,
      `https://127.0.0.1:${server.port}`,
      `http://127.0.0.1.evil.example:${server.port}`,
      'null',
      'file://',
      'x'.repeat(10_000),
    ]
    for (const origin of foreign) {
      for (const channel of CHANNELS) {
        const res = await post(`/api/${channel}`, { ...auth(), Origin: origin })
        expect(res.status, `${channel} from ${origin.slice(0, 40)}`).toBe(403)
        expect(res.body).not.toContain('evil')
        expect(res.body).not.toContain('xxxx')
      }
      expect((await http('/api/host', { headers: { ...auth(), Origin: origin } })).status).toBe(403)
      expect((await readEvents(`/api/events?token=${TOKEN}`, { ...auth(), Origin: origin })).status).toBe(403)
      expect((await http('/', { headers: { Origin: origin } })).status).toBe(403)
    }
    expect(calls.length).toBe(n)
    for (const origin of [`http://127.0.0.1:${server.port}`, `http://localhost:${server.port}`]) {
      expect((await post('/api/bundle.info', { ...auth(), Origin: origin })).status).toBe(200)
      expect((await http('/api/host', { headers: { ...auth(), Origin: origin } })).status).toBe(200)
    }
  }, 60_000)
})

describe('malformed requests', () => {
  it('answer 4xx, quote nothing back, and leave the server answering', async () => {
    const n = calls.length
    const paths = [
      '/api/%ZZ',
      '/api/%E0',
      '/api/%',
      '/%ZZ',
      '/%E0%A4%A',
      '/%00',
      '/api/',
      '/api',
      '/api/..%2f..%2fetc%2fpasswd',
      '/api/../../etc/passwd',
      '/api/bundle..info',
      '/api/bundle.info/',
      '/api/bundle.info%00',
      `/api/${'x'.repeat(200)}`,
      '//evil',
      '//evil/api/bundle.info',
      `/${'a'.repeat(10_000)}`,
      `/api/${'%ZZ'.repeat(2000)}`,
    ]
    for (const path of paths) {
      for (const headers of [auth(), {}]) {
        const get = await http(path, { headers })
        expect(get.status, `GET ${path.slice(0, 40)}`).toBeGreaterThanOrEqual(400)
        expect(get.status, `GET ${path.slice(0, 40)}`).toBeLessThan(500)
        const res = await post(path, headers)
        expect(res.status, `POST ${path.slice(0, 40)}`).toBeGreaterThanOrEqual(400)
        expect(res.status, `POST ${path.slice(0, 40)}`).toBeLessThan(500)
        expect(res.body.length).toBeLessThan(300)
      }
      await stillAnswers()
    }
    expect(calls.length).toBe(n + paths.length)
    // Request targets Node's client would not write, and a 100 kB path (over Node's 16 kB header limit).
    for (const target of ['http://evil.example/api/host', '*', 'api/bundle.info', `/${'b'.repeat(100_000)}`, `/api/${'c'.repeat(100_000)}`]) {
      const status = await raw(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n${Object.entries(auth()).map(([k, v]) => `${k}: ${v}`)}\r\nConnection: close\r\n\r\n`)
      expect(status, target.slice(0, 40)).toBeGreaterThanOrEqual(400)
      expect(status, target.slice(0, 40)).toBeLessThan(500)
      await stillAnswers()
    }
    expect(await raw('NOT HTTP AT ALL\r\n\r\n')).toBe(400)
    expect(await raw(`GET /api/host HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: x\r\n\r\n`)).toBe(400)
    await stillAnswers()
  }, 60_000)
})
