// .ftsession files: the workspace (bundle, tabs, grid states, labels and notes) as versioned JSON.
// Writes are atomic (temp file, fsync, rename, fsync of the folder), so a crash leaves the old file or
// the new one, never half of one. A file we cannot read is refused with a message and left untouched.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { z } from 'zod'
import { sessionState, type SessionFile } from '../ipc/contract'
import { describeZodError } from '../ipc/dispatch'
import { FtError } from '../ipc/errors'

export const SESSION_FORMAT = 'feature-tracer-session'
export const SESSION_VERSION = 1

const annotation = z.object({ label: z.string(), notes: z.string() })
const sessionFileSchema = z.object({
  format: z.literal(SESSION_FORMAT),
  version: z.number().int().positive(),
  savedAt: z.string(),
  bundle: z.object({ path: z.string(), hash: z.string() }),
  state: sessionState,
  labels: z.record(z.string(), annotation).default({}),
})

/** Replaces `path` with `bytes` atomically. */
export function writeFileAtomic(path: string, bytes: string | Uint8Array): void {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`)
  const fd = openSync(temp, 'w', 0o644)
  try {
    writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes, 'utf-8') : bytes)
    fsyncSync(fd)
  } catch (e) {
    closeSync(fd)
    rmSync(temp, { force: true })
    throw e
  }
  closeSync(fd)
  try {
    renameSync(temp, path)
  } catch (e) {
    rmSync(temp, { force: true })
    throw e
  }
  // The rename itself must reach the disk; Windows cannot open a folder for fsync, and needs not to.
  if (process.platform !== 'win32') {
    const dfd = openSync(dir, 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
  }
}

export function writeSessionFile(path: string, session: SessionFile): void {
  try {
    writeFileAtomic(path, `${JSON.stringify(session, null, 2)}\n`)
  } catch (e) {
    throw new FtError('io', `cannot write session ${path}: ${(e as Error).message}`)
  }
}

export function readSessionFile(path: string): SessionFile {
  let text: string
  try {
    text = readFileSync(path, 'utf-8')
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (err.code === 'ENOENT') throw new FtError('not_found', `session file ${path} does not exist`)
    throw new FtError('io', `cannot read session file ${path}: ${err.message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new FtError('session_corrupt', `session file ${path} is not valid JSON (${(e as Error).message}); it was left as it is`)
  }
  const head = z.object({ format: z.string(), version: z.number() }).safeParse(json)
  if (!head.success || head.data.format !== SESSION_FORMAT) {
    throw new FtError('session_corrupt', `${path} is not a Feature Tracer session (no "format": "${SESSION_FORMAT}"); it was left as it is`)
  }
  if (head.data.version > SESSION_VERSION) {
    throw new FtError(
      'session_future_version',
      `session file ${path} has version ${head.data.version}, written by a newer Feature Tracer (this one reads up to ${SESSION_VERSION}); update the app. The file was left as it is`,
    )
  }
  const parsed = sessionFileSchema.safeParse(json)
  if (!parsed.success) {
    throw new FtError('session_corrupt', `session file ${path} is damaged (${describeZodError(parsed.error)}); it was left as it is`)
  }
  return { ...parsed.data, format: SESSION_FORMAT }
}
