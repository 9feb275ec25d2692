// `npm run electron:native`: better-sqlite3 built for the installed Electron's ABI, in the folder that
// main/native/sqlite.ts looks in. A prebuilt binary for the `electron` runtime when one can be
// downloaded (prebuild-install, as better-sqlite3's own install does for Node), else a source build
// against Electron's headers (node-gyp). Both run in a staging folder inside the ABI-keyed folder, and
// only a verified binary is moved into place: node_modules is never written.
//   --if-missing   (npm start, npm run dev) nothing to do when the binary is there; on failure print
//                  the message and exit 0, so the window opens and its start-up page says the same
//   --postinstall  (npm install) as --if-missing, and nothing at all when Electron's own binary was
//                  not downloaded (ELECTRON_SKIP_BINARY_DOWNLOAD, CI)
//   --force        build again even when the binary is there
// Mirrors: npm_config_better_sqlite3_binary_host (prebuild-install's), ELECTRON_REBUILD_DIST_URL
// (Electron's headers, the variable @electron/rebuild reads).
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { bindingFile, nativeDir, sqlitePackage, SQLITE_BINARY, type NativeRuntime, type SqlitePackage } from './sqlite'

export const RETRY_COMMAND = 'npm run electron:native'
const HEADERS_URL = 'https://www.electronjs.org/headers'
/** prebuild-install gives up on a stalled socket after 30 s; a hung process is killed after this. */
const DOWNLOAD_TIMEOUT_MS = 120_000
/** Compiling SQLite takes a few minutes on a small machine; this only stops a build that hangs. */
const BUILD_TIMEOUT_MS = 20 * 60_000

/** The binary one Electron version needs, and where it goes. */
export interface ElectronTarget {
  version: string
  runtime: NativeRuntime
  file: string
}

const requireHere = createRequire(import.meta.url)

/** The ABI of an Electron version, from node-abi's registry. */
export function electronAbi(version: string): string {
  const { getAbi } = requireHere('node-abi') as { getAbi(target: string, runtime: string): string }
  return getAbi(version, 'electron')
}

export function electronTarget(version: string, platform = process.platform, arch = process.arch, pkg: SqlitePackage = sqlitePackage()): ElectronTarget {
  const runtime: NativeRuntime = { electron: version, modules: electronAbi(version), platform, arch }
  return { version, runtime, file: bindingFile(runtime, pkg) }
}

/** The Electron that npm installed next to better-sqlite3, and whether its binary was downloaded. */
export function installedElectron(projectDir: string): { version: string; dir: string; hasBinary: boolean } {
  const manifest = createRequire(join(projectDir, 'package.json')).resolve('electron/package.json')
  const dir = dirname(manifest)
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }
  return { version, dir, hasBinary: existsSync(join(dir, 'dist')) }
}

/**
 * Whether a V8 addon registers itself for an ABI: its initializer is named node_register_module_v<ABI>
 * (ELF, Mach-O and PE alike). undefined when the file names no ABI at all.
 */
export function registersAbi(file: string, abi: string): boolean | undefined {
  const names = new Set(readFileSync(file).toString('latin1').match(/node_register_module_v\d+/g) ?? [])
  return names.size === 0 ? undefined : names.has(`node_register_module_v${abi}`)
}

interface Ran {
  code: number | null
  output: string
  timedOut: boolean
}

/** Runs a child with a time limit, killing its whole process group (make, the compiler) on timeout. */
function run(args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: process.platform !== 'win32' })
    let output = ''
    let timedOut = false
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    const timer = setTimeout(() => {
      timedOut = true
      try {
        if (process.platform !== 'win32' && child.pid) process.kill(-child.pid, 'SIGKILL')
        else child.kill('SIGKILL')
      } catch {
        // Already gone.
      }
    }, timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      done({ code: null, output: output + String(e), timedOut })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, output, timedOut })
    })
  })
}

/** The environment for the tools, less npm settings meant for building Node addons (npm passes the
 *  user's nodedir, target, runtime... to scripts; with them node-gyp would build for Node, not Electron). */
function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^npm_config_(nodedir|target|target_arch|runtime|disturl|dist_url|arch|platform|build_from_source|devdir|node_gyp)$/i.test(key)) delete env[key]
  }
  return env
}

function outputLines(out: Ran): string[] {
  return out.output.split(/\r?\n/).map((l) => l.trim()).filter(Boolean)
}

/** Why prebuild-install failed: its last warning ("connect ECONNREFUSED", "No prebuilt binaries found"). */
function prebuildReason(out: Ran): string {
  if (out.timedOut) return 'timed out'
  const warning = outputLines(out).findLast((l) => /^prebuild-install (warn|ERR!)/.test(l))
  return warning?.replace(/^prebuild-install (warn|ERR!)( install)?\s*/, '') ?? `exit code ${out.code}`
}

/** Why node-gyp failed: the message of its error, which may span several "stack" lines before the trace. */
function gypReason(out: Ran): string {
  if (out.timedOut) return 'timed out'
  const message: string[] = []
  for (const l of outputLines(out)) {
    if (!l.startsWith('gyp ERR! stack ')) continue
    const text = l.slice('gyp ERR! stack '.length).trim()
    if (text.startsWith('at ')) break
    message.push(text.replace(/^(Error|FetchError|TypeError):\s*/, ''))
  }
  return message.join(' ') || (outputLines(out).findLast((l) => l.startsWith('gyp ERR!')) ?? `exit code ${out.code}`)
}

interface Attempt {
  ok: boolean
  detail: string
  log: string
}

async function downloadPrebuilt(t: ElectronTarget, staging: string, sqliteDir: string): Promise<Attempt> {
  const dir = join(staging, 'prebuilt')
  mkdirSync(dir, { recursive: true })
  // prebuild-install reads the package's name, version and repository from the working folder's
  // package.json and unpacks build/Release/better_sqlite3.node into it: a copy of the manifest is all
  // it needs, and the real package's build folder stays as it is.
  cpSync(join(sqliteDir, 'package.json'), join(dir, 'package.json'))
  const bin = createRequire(join(sqliteDir, 'package.json')).resolve('prebuild-install/bin.js')
  const { platform, arch } = t.runtime
  const out = await run([bin, '--runtime=electron', `--target=${t.version}`, `--platform=${platform}`, `--arch=${arch}`, '--verbose'], dir, toolEnv(), DOWNLOAD_TIMEOUT_MS)
  const file = join(dir, 'build', 'Release', SQLITE_BINARY)
  if (out.code === 0 && existsSync(file)) return { ok: true, detail: file, log: out.output }
  return { ok: false, detail: `download failed: ${prebuildReason(out)}`, log: out.output }
}

function nodeGyp(projectDir: string): string | undefined {
  try {
    return createRequire(join(projectDir, 'package.json')).resolve('node-gyp/bin/node-gyp.js')
  } catch {
    // npm's own copy, which npm names to the scripts it runs.
    return process.env.npm_config_node_gyp
  }
}

async function buildFromSource(t: ElectronTarget, staging: string, sqliteDir: string, projectDir: string): Promise<Attempt> {
  const gyp = nodeGyp(projectDir)
  if (!gyp) return { ok: false, detail: 'node-gyp not found', log: '' }
  const dir = join(staging, 'source')
  for (const part of ['package.json', 'binding.gyp', 'src', 'deps']) cpSync(join(sqliteDir, part), join(dir, part), { recursive: true })
  const headers = process.env.ELECTRON_REBUILD_DIST_URL || HEADERS_URL
  const args = [gyp, 'rebuild', '--release', `--target=${t.version}`, `--arch=${t.runtime.arch}`, `--dist-url=${headers}`, `--devdir=${join(homedir(), '.electron-gyp')}`]
  const out = await run(args, dir, toolEnv(), BUILD_TIMEOUT_MS)
  const file = join(dir, 'build', 'Release', SQLITE_BINARY)
  if (out.code === 0 && existsSync(file)) return { ok: true, detail: file, log: out.output }
  return { ok: false, detail: `node-gyp failed: ${gypReason(out)}`, log: out.output }
}

export interface Outcome {
  ok: boolean
  /** The one message for the user. */
  message: string
}

/** Gets the binary for one Electron version into its ABI-keyed folder; node_modules is only read. */
export async function getElectronSqlite(version: string, options: { force?: boolean } = {}): Promise<Outcome> {
  const pkg = sqlitePackage()
  const sqliteDir = join(pkg.projectDir, 'node_modules', 'better-sqlite3')
  const t = electronTarget(version, process.platform, process.arch, pkg)
  const dir = nativeDir(t.runtime, pkg)
  const where = relative(process.cwd(), dir) || dir
  const what = `better-sqlite3 ${pkg.version} for Electron ${version} (ABI ${t.runtime.modules}, ${t.runtime.platform}-${t.runtime.arch})`
  if (!options.force && existsSync(t.file) && registersAbi(t.file, t.runtime.modules) !== false) {
    return { ok: true, message: `electron:native: ${what} is already in ${where}.` }
  }
  mkdirSync(dir, { recursive: true })
  const staging = join(dir, `.staging-${process.pid}`)
  const log: string[] = []
  const failures: string[] = []
  try {
    for (const attempt of [() => downloadPrebuilt(t, staging, sqliteDir), () => buildFromSource(t, staging, sqliteDir, pkg.projectDir)]) {
      const a = await attempt()
      log.push(a.log)
      if (!a.ok) {
        failures.push(a.detail)
        continue
      }
      if (registersAbi(a.detail, t.runtime.modules) === false) {
        failures.push(`it got a binary that is not for ABI ${t.runtime.modules}`)
        continue
      }
      renameSync(a.detail, t.file)
      return { ok: true, message: `electron:native: ${what} is in ${where} (${failures.length ? 'built from source' : 'prebuilt'}).` }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true })
    writeFileSync(join(dir, 'electron-native.log'), log.join('\n'))
  }
  return {
    ok: false,
    message: [
      `electron:native: could not get ${what}.`,
      `  prebuilt binary: ${failures[0]}`,
      `  source build (needs Electron's headers, Python 3 and a C++ compiler): ${failures[1] ?? failures[0]}`,
      `  node_modules is unchanged; the tools' output is in ${join(where, 'electron-native.log')}.`,
      `  Retry with internet access: ${RETRY_COMMAND}`,
    ].join('\n'),
  }
}

async function main(argv: string[]): Promise<number> {
  const mode = argv.includes('--postinstall') ? 'postinstall' : argv.includes('--if-missing') ? 'if-missing' : 'always'
  let outcome: Outcome
  try {
    const electron = installedElectron(sqlitePackage().projectDir)
    if (mode === 'postinstall' && !electron.hasBinary) return 0
    if (mode !== 'always' && existsSync(electronTarget(electron.version).file)) return 0
    outcome = await getElectronSqlite(electron.version, { force: argv.includes('--force') })
  } catch (e) {
    // No electron package, or an Electron newer than node-abi knows: nothing was written.
    outcome = { ok: false, message: `electron:native: ${e instanceof Error ? e.message : String(e)}\n  Retry: ${RETRY_COMMAND}` }
  }
  ;(outcome.ok ? console.log : console.error)(outcome.message)
  return outcome.ok || mode !== 'always' ? 0 : 1
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(process.argv.slice(2)).then((code) => process.exit(code))
}
