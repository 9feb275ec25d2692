// `npm run electron:native` (main/native/electron-native.ts) run as npm runs it, with its downloads
// pointed at this machine: a closed port (offline), or a small server with a prebuilt tarball. Every run
// writes below a temporary FT_NATIVE_DIR, HOME and npm cache; node_modules must come out byte-identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { electronTarget, installedElectron } from '../../main/native/electron-native'
import { sqlitePackage } from '../../main/native/sqlite'

const pkg = sqlitePackage()
const script = join(pkg.projectDir, 'main', 'native', 'electron-native.ts')
const tsx = createRequire(import.meta.url).resolve('tsx/cli')
const sqliteDir = join(pkg.projectDir, 'node_modules', 'better-sqlite3')
const electron = installedElectron(pkg.projectDir)
let tmp = ''

/** Every file under a folder with its size, mtime and (for the binary) its hash. */
function snapshot(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else {
        const s = statSync(p)
        const hash = p.endsWith('.node') ? createHash('sha256').update(readFileSync(p)).digest('hex') : ''
        out.push(`${relative(dir, p)} ${s.size} ${s.mtimeMs} ${hash}`)
      }
    }
  }
  walk(dir)
  return out.sort()
}

function files(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort() : []
}

async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs the script with downloads pointed at `host`; a run that outlives the limit fails the test. */
function electronNative(args: string[], host: string, name: string): Promise<Run> {
  const home = join(tmp, name)
  mkdirSync(home, { recursive: true })
  const env = {
    ...process.env,
    HOME: home,
    USERPROFILE: home,
    npm_config_cache: join(home, 'npm-cache'),
    FT_NATIVE_DIR: join(tmp, 'native'),
    npm_config_better_sqlite3_binary_host: host,
    ELECTRON_REBUILD_DIST_URL: host,
  }
  const started = Date.now()
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [tsx, script, ...args], { cwd: pkg.projectDir, env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(new Error(`electron:native ${args.join(' ')} hung: ${stdout}${stderr}`))
    }, 90_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr, ms: Date.now() - started })
    })
  })
}

/** A prebuild-install tarball: build/Release/better_sqlite3.node registering one ABI. */
function tarball(abi: string): Buffer {
  const dir = join(tmp, `tar-${abi}`)
  mkdirSync(join(dir, 'build', 'Release'), { recursive: true })
  writeFileSync(join(dir, 'build', 'Release', 'better_sqlite3.node'), `\x7fELF fake addon node_register_module_v${abi}\0`)
  const r = spawnSync('tar', ['czf', join(dir, 'prebuilt.tar.gz'), '-C', dir, 'build'])
  expect(r.status).toBe(0)
  return readFileSync(join(dir, 'prebuilt.tar.gz'))
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ft-electron-native-'))
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('npm run electron:native', () => {
  const target = electronTarget(electron.version)
  // e.g. better-sqlite3-12.11.1/electron-abi150-linux-x64, below FT_NATIVE_DIR
  const abiDir = () => join(basename(dirname(dirname(target.file))), basename(dirname(target.file)))

  it('offline: one message saying what failed and how to retry, a non-zero exit, node_modules untouched', async () => {
    const before = snapshot(sqliteDir)
    const run = await electronNative([], `http://127.0.0.1:${await closedPort()}`, 'offline')
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    const message = run.stderr.trim()
    expect(message.match(/electron:native:/g)).toHaveLength(1)
    expect(message).toContain(`could not get better-sqlite3 ${pkg.version} for Electron ${electron.version} (ABI ${target.runtime.modules}`)
    expect(message).toMatch(/prebuilt binary: download failed: connect ECONNREFUSED/)
    expect(message).toMatch(/source build .*: node-gyp failed: /)
    expect(message).toContain('node_modules is unchanged')
    expect(message).toMatch(/Retry with internet access: npm run electron:native$/)
    expect(snapshot(sqliteDir)).toEqual(before)
    // Nothing but the log of the tools' output, in the ABI-keyed folder: no binary, no staging left.
    expect(files(join(tmp, 'native'))).toEqual([join(abiDir(), 'electron-native.log')])
  }, 120_000)

  it('before npm start (--if-missing) the same failure leaves the start to the window’s page', async () => {
    const run = await electronNative(['--if-missing'], `http://127.0.0.1:${await closedPort()}`, 'if-missing')
    expect(run.code).toBe(0)
    expect(run.stderr).toContain('Retry with internet access: npm run electron:native')
  }, 120_000)

  it.skipIf(electron.hasBinary)('after npm install without Electron’s binary (CI) does nothing, quickly', async () => {
    const run = await electronNative(['--postinstall'], `http://127.0.0.1:${await closedPort()}`, 'postinstall')
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' })
    expect(run.ms).toBeLessThan(20_000)
  }, 60_000)

  describe('with a mirror that has prebuilt binaries', () => {
    let server: Server
    let served: Buffer
    const requests: string[] = []
    beforeAll(async () => {
      served = tarball(target.runtime.modules)
      server = createServer((req, res) => {
        requests.push(req.url ?? '')
        // Prebuilt tarballs only: Electron's headers are not here, so a source build fails at once.
        if (/\/better-sqlite3-v[^/]+\.tar\.gz$/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/gzip' }).end(served)
        else res.writeHead(404).end()
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    })
    afterAll(() => new Promise<void>((r) => server.close(() => r())))
    const host = () => `http://127.0.0.1:${(server.address() as { port: number }).port}`

    it('puts the binary for Electron’s ABI in its folder, and leaves node_modules alone', async () => {
      const before = snapshot(sqliteDir)
      const run = await electronNative([], host(), 'prebuilt')
      expect(run.stderr).toBe('')
      expect(run.code).toBe(0)
      expect(run.stdout.trim()).toMatch(new RegExp(`^electron:native: better-sqlite3 .* is in .*electron-abi${target.runtime.modules}-.* \\(prebuilt\\)\\.$`))
      expect(requests.at(-1)).toBe(`/v${pkg.version}/better-sqlite3-v${pkg.version}-electron-v${target.runtime.modules}-${process.platform}-${process.arch}.tar.gz`)
      const file = join(tmp, 'native', abiDir(), 'better_sqlite3.node')
      expect(readFileSync(file, 'latin1')).toContain(`node_register_module_v${target.runtime.modules}`)
      expect(snapshot(sqliteDir)).toEqual(before)
      // Present now: nothing to do.
      const again = await electronNative([], host(), 'prebuilt')
      expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('is already in') })
    }, 120_000)

    it('refuses a binary made for another ABI, and keeps the one it has', async () => {
      const file = join(tmp, 'native', abiDir(), 'better_sqlite3.node')
      const good = readFileSync(file)
      served = tarball('115')
      const run = await electronNative(['--force'], host(), 'wrong-abi')
      expect(run.code).toBe(1)
      expect(run.stderr).toContain(`prebuilt binary: it got a binary that is not for ABI ${target.runtime.modules}`)
      expect(readFileSync(file)).toEqual(good)
    }, 120_000)
  })
})
