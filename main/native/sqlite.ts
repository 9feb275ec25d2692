// Which better-sqlite3 binary a process loads. better-sqlite3 is a V8 addon, not N-API: a build works in
// one ABI only (process.versions.modules: 115 for Node 20, 150 for Electron 45). node_modules keeps the
// Node build (serve mode, the CLI, the tests); Electron in a checkout loads a second build, which
// `npm run electron:native` (main/native/electron-native.ts) puts in a folder of its own keyed by ABI,
// so neither ever overwrites the other. Every process and thread that opens SQLite (main, the job processes,
// a compute process) goes through openSqlite, so they all make the same choice.
import Database from 'better-sqlite3'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** What a native binary must match: the runtime, its ABI, the platform and the CPU. */
export interface NativeRuntime {
  /** process.versions.electron: absent in plain Node. */
  electron?: string
  /** process.versions.modules: the V8 addon ABI. */
  modules: string
  platform: string
  arch: string
}

/** The installed better-sqlite3: its version (a build must match its JS) and the project that holds it. */
export interface SqlitePackage {
  version: string
  /** The folder whose node_modules holds better-sqlite3 (the checkout, in development). */
  projectDir: string
}

export const SQLITE_BINARY = 'better_sqlite3.node'

export function currentRuntime(): NativeRuntime {
  return { electron: process.versions.electron, modules: process.versions.modules, platform: process.platform, arch: process.arch }
}

let installed: SqlitePackage | undefined
export function sqlitePackage(): SqlitePackage {
  if (!installed) {
    const manifest = createRequire(import.meta.url).resolve('better-sqlite3/package.json')
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }
    installed = { version, projectDir: dirname(dirname(dirname(manifest))) }
  }
  return installed
}

function abiDir(kind: 'electron' | 'node', rt: NativeRuntime, pkg: SqlitePackage): string {
  const root = process.env.FT_NATIVE_DIR || join(pkg.projectDir, '.native')
  return join(root, `better-sqlite3-${pkg.version}`, `${kind}-abi${rt.modules}-${rt.platform}-${rt.arch}`)
}

/** The folder for one runtime's ABI, e.g. .native/better-sqlite3-12.11.1/electron-abi150-linux-x64. It
 *  sits outside node_modules (npm never touches it, and `npm rebuild` cannot clobber it) and is keyed by
 *  better-sqlite3's version too, because a binary only fits the JS it was built with. FT_NATIVE_DIR
 *  moves the whole tree (a read-only checkout, builds shared between checkouts, the tests). */
export function nativeDir(rt: NativeRuntime, pkg: SqlitePackage = sqlitePackage()): string {
  return abiDir(rt.electron ? 'electron' : 'node', rt, pkg)
}

/** Where the build of better-sqlite3 for a runtime is kept (whether or not it is there yet). */
export function bindingFile(rt: NativeRuntime, pkg: SqlitePackage = sqlitePackage()): string {
  return join(nativeDir(rt, pkg), SQLITE_BINARY)
}

/**
 * The `nativeBinding` this process passes to better-sqlite3; undefined means node_modules' own build.
 * - Electron with its ABI-keyed build present (a checkout after `npm run electron:native`): that build.
 * - Electron without it: node_modules' build. That is right in the packaged app, where electron-builder
 *   built node_modules' copy for Electron, and wrong in a checkout that never ran electron:native, where
 *   loading it fails with Node's "compiled against a different Node.js version" and the start-up check
 *   (main/index.ts) says which command fixes it.
 * - Plain Node: node_modules' build, which npm made for this Node.
 * The lookup goes by the ABI alone, not by process.versions.electron, which a worker thread of Electron's
 * main process may lack: Node's and Electron's ABI numbers come from one registry and never coincide,
 * so plain Node never finds an Electron folder for its own ABI.
 */
export function sqliteBinding(rt: NativeRuntime = currentRuntime(), pkg: SqlitePackage = sqlitePackage()): string | undefined {
  const file = join(abiDir('electron', rt, pkg), SQLITE_BINARY)
  return existsSync(file) ? file : undefined
}

/** Options of better-sqlite3's Database, less the binding, which sqliteBinding chooses. */
export type SqliteOptions = Omit<Database.Options, 'nativeBinding'>

/** Opens a database with the binary this process must load: use it instead of `new Database`. */
/** A file path, or a serialized database (a Buffer: opened in memory). */
export function openSqlite(path: string | Buffer, options: SqliteOptions = {}): Database.Database {
  return new Database(path, { ...options, nativeBinding: sqliteBinding() })
}

/** Why the SQLite binding cannot load in this process, or null when it can (the start-up check). */
export function sqliteLoadError(binding: string | undefined = sqliteBinding()): string | null {
  try {
    new Database(':memory:', { nativeBinding: binding }).close()
    return null
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}
