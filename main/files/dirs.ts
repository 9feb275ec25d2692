// The per-user folders the app writes to when the caller names none.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The user's cache folder: $XDG_CACHE_HOME/feature-tracer, else ~/.cache/feature-tracer. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'feature-tracer')
}

/**
 * The app's folder (the one with its package.json): walked up to from `from` (a module's URL), so the
 * answer is the same from the TypeScript sources (main/transports/serve/cli.ts) and from the build
 * (out/main/cli.js or a chunk beside it).
 */
export function appRoot(from: string): string {
  let dir = dirname(fileURLToPath(from))
  for (;;) {
    try {
      if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf-8')).name === 'feature-tracer') return dir
    } catch {
      // No package.json here, or not ours: keep walking up.
    }
    const up = dirname(dir)
    if (up === dir) throw new Error(`cannot find Feature Tracer's package.json above ${fileURLToPath(from)}`)
    dir = up
  }
}
