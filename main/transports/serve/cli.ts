// `feature-tracer serve [--bundle DIR] [--port N] [--cache FILE] [--user-data DIR] [--token T]`: the workbench in a
// browser, for a machine without a display (or a GPU box through `ssh -L N:127.0.0.1:N`). The same
// Workbench and handler table as the Electron window; only the transport differs.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { appRoot } from '../../files/dirs'
import { createWorkbench } from '../../app/workbench'
import { startServer } from './server'
import { chosenToken } from './token'

const ROOT = appRoot(import.meta.url)
export const DEFAULT_PORT = 7373

const USAGE = `usage: feature-tracer serve [--bundle DIR] [--port N] [--cache FILE] [--user-data DIR] [--token T]

  --bundle DIR      the bundle to open (default: resources/demo)
  --port N          loopback port (default ${DEFAULT_PORT}; 0 picks a free one)
  --cache FILE      the activation cache file (default: one per bundle in the user cache folder)
  --user-data DIR   labels, notes and the autosave slot (default: ~/.config/feature-tracer)
  --renderer DIR    the built renderer (default: out/renderer)
  --token T         the access token (default: a new random one each launch; FT_SERVE_TOKEN sets it too,
                    without showing it to other users in the process list). 32+ characters of A-Za-z0-9_-

Binds 127.0.0.1 only. Open the URL it prints, http://127.0.0.1:N/?token=…; every /api request needs
the token (Authorization: Bearer T). From another machine: ssh -L N:127.0.0.1:N host, then that URL.`

/** What serve prints on stdout, and only there: the bundle and the URL with its token. */
export function banner(bundleDir: string, launchUrl: string): string {
  return `Feature Tracer workbench for ${bundleDir}\n  ${launchUrl}\n`
}

function defaultUserData(): string {
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'feature-tracer')
}

/**
 * FT_BUILD_CHUNK_SEQS / FT_BUILD_PAUSE_MS (and FT_CORPUS_CHUNK_SEQS / FT_CORPUS_PAUSE_MS for corpus
 * scores) slow a job down into many small chunks, so that the e2e test can watch the progress bar and
 * cancel a job on the tiny bundle, which otherwise ends at once. FT_BUILD_PARTIAL_MS sets how often a build
 * writes the partial summary the feature views read meanwhile (0: every chunk; "off": never).
 */
function jobTuning(prefix: 'FT_BUILD' | 'FT_CORPUS'): { chunkSeqs?: number; pauseMsPerChunk?: number; partialEveryMs?: number | null } | undefined {
  const chunkSeqs = Number(process.env[`${prefix}_CHUNK_SEQS`]) || undefined
  const pauseMsPerChunk = Number(process.env[`${prefix}_PAUSE_MS`]) || undefined
  const partialText = process.env[`${prefix}_PARTIAL_MS`]
  const partialEveryMs = partialText === undefined || partialText === '' ? undefined : partialText === 'off' ? null : Number(partialText)
  if (partialEveryMs !== undefined && partialEveryMs !== null && !(partialEveryMs >= 0)) throw new Error(`${prefix}_PARTIAL_MS must be a number of milliseconds or "off"`)
  return chunkSeqs || pauseMsPerChunk || partialEveryMs !== undefined ? { chunkSeqs, pauseMsPerChunk, partialEveryMs } : undefined
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      bundle: { type: 'string' },
      port: { type: 'string' },
      cache: { type: 'string' },
      'user-data': { type: 'string' },
      renderer: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const token = chosenToken(values.token)
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port number: ${values.port}`)
  const rendererDir = resolve(values.renderer ?? join(ROOT, 'out/renderer'))
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new Error(`no built renderer in ${rendererDir}; run \`npx electron-vite build\` (npm run serve does)`)
  }
  const bundleDir = resolve(values.bundle ?? join(ROOT, 'resources/demo'))

  const workbench = createWorkbench({
    bundleDir,
    cachePath: values.cache ? resolve(values.cache) : undefined,
    userDataDir: resolve(values['user-data'] ?? defaultUserData()),
    // As in the app: the status bar names the provider from the start, and the first trace finds the engine made.
    startComputeOnOpen: true,
    build: jobTuning('FT_BUILD'),
    corpusScores: jobTuning('FT_CORPUS'),
  })
  const server = await startServer({
    bundleDir,
    port,
    rendererDir,
    token,
    dispatch: workbench.dispatch,
    subscribe: (listener) => workbench.subscribe(listener),
  })
  process.stdout.write(banner(bundleDir, server.launchUrl))

  let closing = false
  const shutdown = async () => {
    if (closing) return
    closing = true
    await server.close()
    await workbench.close()
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown())
  process.on('SIGTERM', () => void shutdown())
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`feature-tracer serve: ${(err as Error).message ?? err}\n`)
    process.exit(1)
  })
}
