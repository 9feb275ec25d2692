// The per-user folders the app writes to when the caller names none.
import { homedir } from 'node:os'
import { join } from 'node:path'

/** The user's cache folder: $XDG_CACHE_HOME/feature-tracer, else ~/.cache/feature-tracer. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'feature-tracer')
}
