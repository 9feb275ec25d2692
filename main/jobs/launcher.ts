// How a host process is started: one interface, two launchers. Plain Node (serve, the CLI, tests) forks
// with child_process.fork; the Electron app injects one built on utilityProcess.fork (main/index.ts), the
// process type Electron supervises for this. Both carry structured-clone messages (typed arrays included).
import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { FromHost, ToHost } from './protocol'

/** The host's code: a TypeScript source (tsx, vitest) or a file of the electron-vite build. */
export interface HostEntry {
  path: string
  typescript: boolean
}

/** A started host process, as its supervisor sees it. */
export interface HostHandle {
  readonly pid: number | undefined
  send(message: ToHost): void
  onMessage(listener: (message: FromHost) => void): void
  /** Called once, when the process has ended; `how` says how ("exit code 1", "signal SIGKILL"). */
  onExit(listener: (how: string) => void): void
  /** Ends the process at once (SIGKILL): safe whatever it is doing, since it is a process of its own. */
  kill(): void
}

/** Starts `entry` as a host process; `name` is what the process is (its service name in Electron). */
export type HostLauncher = (entry: HostEntry, name: string) => HostHandle

/**
 * Where a host's code is, relative to the module that starts it (its import.meta.url): from TypeScript
 * sources, the .ts file; from the build, the first of `built` that exists (the host is an entry of the
 * electron-vite main build, next to index.js, or one folder up when the caller lands in a shared chunk).
 */
export function locateEntry(here: string, source: string, built: string[]): HostEntry {
  if (here.endsWith('.ts')) return { path: fileURLToPath(new URL(source, here)), typescript: true }
  for (const rel of built) {
    const path = fileURLToPath(new URL(rel, here))
    if (existsSync(path)) return { path, typescript: false }
  }
  throw new Error(`the compute host is not built: none of ${built.join(', ')} exists next to ${fileURLToPath(here)} (it is an entry of the main build, electron.vite.config.ts)`)
}

/** tsx's loader by file URL (a bare `tsx` would resolve from the child's working directory). */
function tsxLoader(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
}

/** child_process.fork: Node's IPC channel with V8 serialization, the child's stdout sent to our stderr. */
export const nodeLauncher: HostLauncher = (entry) => {
  const child = fork(entry.path, [], {
    // Never the parent's flags (a test runner's loader, --inspect): only what the entry needs.
    execArgv: entry.typescript ? ['--import', tsxLoader()] : [],
    serialization: 'advanced',
    // stdout may be the CLI's output (JSON): whatever the host prints goes to stderr.
    stdio: ['ignore', 2, 'inherit', 'ipc'],
  })
  return {
    get pid() {
      return child.pid
    },
    send: (message) => {
      if (child.connected) child.send(message)
    },
    onMessage: (listener) => void child.on('message', (m) => listener(m as FromHost)),
    onExit: (listener) => {
      let ended = false
      const end = (how: string): void => {
        if (!ended) listener(how)
        ended = true
      }
      child.once('exit', (code, signal) => end(signal ? `signal ${signal}` : `exit code ${code}`))
      // A child that cannot even be spawned emits 'error' (and maybe no 'exit').
      child.once('error', (e) => {
        if (child.pid === undefined) end(`could not start: ${e.message}`)
      })
    },
    kill: () => void child.kill('SIGKILL'),
  }
}
