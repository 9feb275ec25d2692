// `npm run dist` cannot run here (electron-builder downloads Electron and the packaging tools), so its
// configuration is checked offline: loaded and validated by electron-builder's own code and schema, held
// to what the app needs (the targets, the demo where main/index.ts looks, native modules unpacked), and
// packed for real into an unpacked Linux app around a stand-in for Electron, without the native rebuild.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { sqlitePackage } from '../../main/native/sqlite'

const { projectDir } = sqlitePackage()
const builderRequire = createRequire(createRequire(import.meta.url).resolve('app-builder-lib/package.json'))

type Config = Record<string, unknown> & {
  files: Array<{ filter: string[] }>
  asarUnpack: string[]
  extraResources: Array<{ from: string; to: string }>
  linux: { target: string[]; files: string[]; maintainer?: string }
  mac: { target: string; files: string[] }
  win: { target: string; files: string[] }
}

const { getConfig, validateConfiguration } = builderRequire('./out/util/config/config.js') as {
  getConfig(projectDir: string, configPath: string | null, fromOptions: unknown): Promise<Config>
  validateConfiguration(config: unknown, debugLogger: { isEnabled: boolean }): Promise<void>
}
const { minimatch } = builderRequire('minimatch') as { minimatch(path: string, pattern: string, options?: { dot?: boolean }): boolean }
const manifest = JSON.parse(readFileSync(join(projectDir, 'package.json'), 'utf8')) as {
  main: string
  dependencies: Record<string, string>
  scripts: Record<string, string>
  engines: Record<string, string>
}

function walk(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

describe('electron-builder configuration (electron-builder.yml)', async () => {
  const config = await getConfig(projectDir, null, null)

  it('passes electron-builder’s own validation, which does refuse a misspelt option', async () => {
    await expect(validateConfiguration(config, { isEnabled: false })).resolves.toBeUndefined()
    await expect(validateConfiguration({ ...config, asarUnpak: ['x'] }, { isEnabled: false })).rejects.toThrow(/asarUnpak/)
  })

  it('builds AppImage and deb, dmg, nsis; uploads nothing', () => {
    expect(config.linux.target).toEqual(['AppImage', 'deb'])
    expect(config.linux.maintainer).toBeTruthy() // deb refuses to build without one
    expect(config.mac.target).toBe('dmg')
    expect(config.win.target).toBe('nsis')
    expect(config.publish).toBeNull()
  })

  it('packs the built app, with the demo bundle where main/index.ts looks for it', () => {
    expect(config.files[0].filter).toEqual(expect.arrayContaining(['out/**/*', 'package.json']))
    expect(manifest.main.startsWith('out/')).toBe(true)
    expect(config.extraResources).toEqual([{ from: 'resources/demo', to: 'demo' }])
    expect(existsSync(join(projectDir, 'resources/demo'))).toBe(true)
    expect(readFileSync(join(projectDir, 'main/index.ts'), 'utf8')).toContain("join(process.resourcesPath, 'demo')")
  })

  it('rebuilds native modules for Electron and unpacks every native file of the dependencies from the asar', () => {
    expect(config.npmRebuild).not.toBe(false)
    expect(config.asar).not.toBe(false)
    const excluded = config.files[0].filter.filter((p) => p.startsWith('!')).map((p) => p.slice(1))
    const native: string[] = []
    for (const dep of Object.keys(manifest.dependencies)) {
      for (const file of walk(join(projectDir, 'node_modules', dep))) {
        const path = relative(projectDir, file).split('\\').join('/')
        if (!/\.(node|so(\.\d+)*|dylib|dll)$/.test(path) || excluded.some((p) => minimatch(path, p, { dot: true }))) continue
        native.push(path)
        expect(config.asarUnpack.some((p) => minimatch(path, p, { dot: true })), `${path} is not unpacked`).toBe(true)
      }
    }
    expect(native).toContain('node_modules/better-sqlite3/build/Release/better_sqlite3.node')
    expect(native.some((p) => p.startsWith('node_modules/onnxruntime-node/bin/'))).toBe(true)
  })

  it('gives each OS’s file set the app too (a set of exclusions only would pack the whole project)', () => {
    for (const os of ['linux', 'mac', 'win'] as const) {
      expect(config[os].files.filter((p) => !p.startsWith('!'))).toEqual(config.files[0].filter.filter((p) => !p.startsWith('!')))
    }
  })

  it('ships each OS only its own onnxruntime-node binaries', () => {
    const others = { linux: ['darwin', 'win32'], mac: ['linux', 'win32'], win: ['darwin', 'linux'] } as const
    for (const [os, skip] of Object.entries(others) as Array<[keyof typeof others, readonly string[]]>) {
      const patterns = config[os].files.filter((p) => p.startsWith('!')).map((p) => p.slice(1))
      for (const platform of ['linux', 'darwin', 'win32']) {
        const path = `node_modules/onnxruntime-node/bin/napi-v6/${platform}/x64/onnxruntime_binding.node`
        expect(patterns.some((p) => minimatch(path, p)), `${os}: ${platform}`).toBe(skip.includes(platform))
      }
    }
  })
})

describe.skipIf(process.platform !== 'linux' || !existsSync(join(projectDir, 'out/main/index.js')))('npm run dist -- --linux dir, offline', () => {
  let tmp = ''
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ft-dist-'))
  })
  afterAll(() => rmSync(tmp, { recursive: true, force: true }))

  it('packs out/, package.json and the production node_modules, unpacks the native files, adds the demo', () => {
    // A stand-in for Electron's unpacked distribution: electron-builder copies it and renames the binary.
    mkdirSync(join(tmp, 'electron', 'resources'), { recursive: true })
    writeFileSync(join(tmp, 'electron', 'electron'), '#!/bin/sh\n')
    chmodSync(join(tmp, 'electron', 'electron'), 0o755)
    // Through `npm run dist`'s own script, which keeps node_modules' Node build and puts it back after.
    const nodeBuild = join(projectDir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')
    const before = statSync(nodeBuild)
    const tsx = createRequire(import.meta.url).resolve('tsx/cli')
    const args = ['--linux', 'dir', `-c.electronDist=${join(tmp, 'electron')}`, '-c.npmRebuild=false', `-c.directories.output=${join(tmp, 'dist')}`]
    const env = { ...process.env, FT_NATIVE_DIR: join(tmp, 'native') }
    const r = spawnSync(process.execPath, [tsx, 'main/native/dist.ts', ...args], { cwd: projectDir, env, encoding: 'utf8', timeout: 240_000 })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain("dist: node_modules' better-sqlite3 is Node's build again")
    expect(statSync(nodeBuild)).toMatchObject({ size: before.size, mtimeMs: before.mtimeMs, ino: before.ino })
    const kept = join(tmp, 'native', `better-sqlite3-${sqlitePackage().version}`, `node-abi${process.versions.modules}-linux-${process.arch}`, 'better_sqlite3.node')
    expect(readFileSync(kept)).toEqual(readFileSync(nodeBuild))
    const resources = join(tmp, 'dist', 'linux-unpacked', 'resources')
    type AsarDir = { files?: Record<string, AsarDir> }
    const { getRawHeader } = builderRequire('@electron/asar') as { getRawHeader(p: string): { header: AsarDir } }
    const header = getRawHeader(join(resources, 'app.asar')).header
    expect(Object.keys(header.files!).sort()).toEqual(['node_modules', 'out', 'package.json'])
    expect(Object.keys(header.files!.out.files!).sort()).toEqual(['main', 'preload', 'renderer'])
    const sqlite = header.files!.node_modules.files!['better-sqlite3']
    expect(Object.keys(sqlite.files!).sort()).toEqual(['LICENSE', 'build', 'lib', 'package.json'])
    expect(Object.keys(sqlite.files!.build.files!.Release.files!)).toEqual(['better_sqlite3.node'])
    const unpacked = walk(join(resources, 'app.asar.unpacked')).map((f) => relative(join(resources, 'app.asar.unpacked'), f).split('\\').join('/'))
    expect(unpacked).toContain('node_modules/better-sqlite3/build/Release/better_sqlite3.node')
    expect(unpacked).toContain('node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1')
    expect(unpacked.filter((f) => /napi-v6\/(darwin|win32)\//.test(f))).toEqual([])
    expect(existsSync(join(resources, 'demo', 'bundle.json'))).toBe(true)
  }, 300_000)
})

describe('package.json for the desktop app', () => {
  it('has the scripts: electron:native, before start/dev when missing, after install, and dist', () => {
    expect(manifest.scripts['electron:native']).toBe('tsx main/native/electron-native.ts')
    expect(manifest.scripts.start).toMatch(/^tsx main\/native\/electron-native\.ts --if-missing && electron-vite preview$/)
    expect(manifest.scripts.dev).toMatch(/^tsx main\/native\/electron-native\.ts --if-missing && electron-vite dev$/)
    expect(manifest.scripts.postinstall).toBe('tsx main/native/electron-native.ts --postinstall')
    expect(manifest.scripts.dist).toBe('electron-vite build && tsx main/native/dist.ts')
  })

  it('says which Node serve mode, the CLI and the tests need, and which the desktop app needs', () => {
    expect(manifest.engines.node).toBe('^20.19.0 || >=22.12.0')
    expect(manifest.engines['node-desktop']).toBe('>=22.12.0')
    const electron = JSON.parse(readFileSync(join(projectDir, 'node_modules/electron/package.json'), 'utf8')) as { engines: { node: string } }
    expect(electron.engines.node.replace(/\s/g, '')).toBe(manifest.engines['node-desktop'])
  })
})
