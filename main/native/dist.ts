// `npm run dist [-- electron-builder options]`: the installers, from electron-builder.yml, with
// node_modules' better-sqlite3 left as Node's build afterwards.
// electron-builder builds native modules for Electron inside the project's own node_modules (its
// @electron/rebuild runs with buildPath = the app folder) and then copies them into the package. The
// package needs exactly that, but serve mode, the CLI and the tests would be left with a binary for
// Electron's ABI that Node cannot load. So Node's build is first kept in its own ABI-keyed folder
// (main/native/sqlite.ts) and copied back when electron-builder is done, whether it succeeded or not.
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { registersAbi } from './electron-native'
import { bindingFile, currentRuntime, sqlitePackage, SQLITE_BINARY } from './sqlite'

const { projectDir } = sqlitePackage()
const release = join(projectDir, 'node_modules', 'better-sqlite3', 'build', 'Release')
const nodeBuild = join(release, SQLITE_BINARY)
const kept = bindingFile(currentRuntime())

if (existsSync(nodeBuild) && registersAbi(nodeBuild, process.versions.modules) !== false) {
  mkdirSync(dirname(kept), { recursive: true })
  copyFileSync(nodeBuild, kept)
} else if (!existsSync(kept)) {
  // node_modules holds another ABI's build when a dist run was killed before it put Node's back; the copy
  // kept then restores it below. Without that copy there is nothing to put back.
  console.error(`dist: node_modules' better-sqlite3 is not built for this Node (ABI ${process.versions.modules}). Run: npm rebuild better-sqlite3`)
  process.exit(1)
}

function restore(): void {
  // @electron/rebuild's marker says "built for Electron"; without it, the next dist builds again.
  rmSync(join(release, '.forge-meta'), { force: true })
  if (existsSync(nodeBuild) && readFileSync(nodeBuild).equals(readFileSync(kept))) return
  // A new file renamed into place: a process that has the old binary loaded keeps its own copy.
  mkdirSync(release, { recursive: true })
  const next = `${nodeBuild}.${process.pid}.tmp`
  copyFileSync(kept, next)
  renameSync(next, nodeBuild)
}

// Ctrl-C reaches electron-builder too (same process group); this process stays to put Node's build back.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => {})

const cli = createRequire(join(projectDir, 'package.json')).resolve('electron-builder/cli.js')
const child = spawn(process.execPath, [cli, '--publish', 'never', ...process.argv.slice(2)], { cwd: projectDir, stdio: 'inherit' })
child.on('close', (code, signal) => {
  restore()
  console.log(`dist: node_modules' better-sqlite3 is Node's build again (ABI ${process.versions.modules}).`)
  process.exit(code ?? (signal ? 1 : 0))
})
child.on('error', (e) => {
  restore()
  console.error(`dist: could not start electron-builder: ${e.message}`)
  process.exit(1)
})
