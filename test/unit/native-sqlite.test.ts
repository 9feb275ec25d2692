// Which better-sqlite3 binary a process loads (main/native/sqlite.ts): node_modules' Node build in plain
// Node, an ABI-keyed build of its own under Electron; and the checks around it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { bindingFile, currentRuntime, nativeDir, openSqlite, sqliteBinding, sqliteLoadError, sqlitePackage, type NativeRuntime } from '../../main/native/sqlite'
import { electronAbi, electronTarget, installedElectron, registersAbi } from '../../main/native/electron-native'
import { sqliteProblemPage } from '../../main/native/startup-page'

const pkg = sqlitePackage()
const nodeBuild = join(pkg.projectDir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')
let tmp = ''

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ft-native-'))
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
afterEach(() => {
  delete process.env.FT_NATIVE_DIR
})

describe('the better-sqlite3 binary a process loads', () => {
  it('plain Node loads node_modules’ own build, through openSqlite as through new Database', () => {
    expect(currentRuntime().electron).toBeUndefined()
    expect(sqliteBinding()).toBeUndefined()
    expect(sqliteLoadError()).toBeNull()
    const db = openSqlite(join(tmp, 'a.sqlite'))
    db.exec('create table t (x)')
    db.prepare('insert into t values (?)').run(7)
    db.close()
    const ro = openSqlite(join(tmp, 'a.sqlite'), { readonly: true, fileMustExist: true })
    expect(ro.prepare('select x from t').get()).toEqual({ x: 7 })
    ro.close()
  })

  it('Electron 45.5.0 is ABI 150, whose build lives in a folder of its own, outside node_modules', () => {
    const t = electronTarget('45.5.0', 'linux', 'x64', { version: '12.11.1', projectDir: '/repo' })
    expect(t.runtime.modules).toBe('150')
    expect(t.file).toBe(join('/repo', '.native', 'better-sqlite3-12.11.1', 'electron-abi150-linux-x64', 'better_sqlite3.node'))
    // The same path the running app computes from its own process.versions.
    const inElectron: NativeRuntime = { electron: '45.5.0', modules: '150', platform: 'linux', arch: 'x64' }
    expect(bindingFile(inElectron, { version: '12.11.1', projectDir: '/repo' })).toBe(t.file)
    const inNode: NativeRuntime = { modules: '115', platform: 'linux', arch: 'x64' }
    expect(nativeDir(inNode, { version: '12.11.1', projectDir: '/repo' })).toBe(join('/repo', '.native', 'better-sqlite3-12.11.1', 'node-abi115-linux-x64'))
    expect(relative(join(pkg.projectDir, 'node_modules'), electronTarget('45.5.0').file).startsWith('..')).toBe(true)
  })

  it('node-abi agrees with the ABI the installed Electron declares', () => {
    const electron = installedElectron(pkg.projectDir)
    expect(electronAbi(electron.version)).toBe(readFileSync(join(electron.dir, 'abi_version'), 'utf8').trim())
  })

  it('under Electron’s ABI: its own build when it is there, else node_modules’ (the packaged app’s)', () => {
    process.env.FT_NATIVE_DIR = join(tmp, 'native')
    const rt: NativeRuntime = { electron: '45.5.0', modules: '150', platform: process.platform, arch: process.arch }
    const file = bindingFile(rt)
    expect(file.startsWith(join(tmp, 'native') + sep)).toBe(true)
    expect(sqliteBinding(rt)).toBeUndefined()
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, 'node_register_module_v150')
    expect(sqliteBinding(rt)).toBe(file)
    // A worker thread of Electron's main process, which may lack process.versions.electron: same ABI.
    expect(sqliteBinding({ ...rt, electron: undefined })).toBe(file)
    expect(sqliteBinding({ ...rt, electron: undefined, modules: '115' })).toBeUndefined()
  })

  it('reports a binding that does not load, instead of throwing', () => {
    const bad = join(tmp, 'bad', 'better_sqlite3.node')
    mkdirSync(dirname(bad), { recursive: true })
    writeFileSync(bad, 'not a shared object')
    expect(sqliteLoadError(bad)).toEqual(expect.any(String))
    expect(sqliteLoadError(join(tmp, 'missing', 'better_sqlite3.node'))).toMatch(/Cannot find module/)
  })

  it('reads which ABI an addon registers', () => {
    expect(registersAbi(nodeBuild, process.versions.modules)).toBe(true)
    expect(registersAbi(nodeBuild, '150')).toBe(false)
    const plain = join(tmp, 'plain.node')
    writeFileSync(plain, 'no registration here')
    expect(registersAbi(plain, '150')).toBeUndefined()
  })
})

describe('the start-up page', () => {
  const problem = {
    error: "The module '/x/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. <script>alert(1)</script>",
    runtime: { electron: '45.5.0', modules: '150', platform: 'linux', arch: 'x64' },
    expected: '/repo/.native/better-sqlite3-12.11.1/electron-abi150-linux-x64/better_sqlite3.node',
  }

  it('says what is wrong and the command that fixes it, with no script and a CSP that allows none', () => {
    const html = sqliteProblemPage({ ...problem, packaged: false })
    expect(html).toContain('Electron 45.5.0 (ABI 150, linux-x64)')
    expect(html).toContain('NODE_MODULE_VERSION 115. &#60;script&#62;alert(1)&#60;/script&#62;')
    expect(html).toContain('<pre class="fix">npm run electron:native</pre>')
    expect(html).toContain(problem.expected)
    expect(html).not.toMatch(/<script/i)
    expect(html).toContain(`content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;"`)
  })

  it('in an installed app, asks for a reinstall instead of a command it cannot run', () => {
    const html = sqliteProblemPage({ ...problem, packaged: true })
    expect(html).toContain('Reinstall')
    expect(html).not.toContain('npm run electron:native')
  })
})
