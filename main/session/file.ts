// .ftsession files: the workspace (bundle, tabs, grid states, labels and notes) as versioned JSON.
// Writes are atomic (temp file, fsync, rename, fsync of the folder), so a crash leaves the old file or
// the new one, never half of one. A session path must be absolute and end in .ftsession; a save never
// replaces a file that is not a session of ours and never writes into the app's own folder. A file we
// cannot read is refused with a message that names it (never quotes it) and left untouched; the autosave
// slot moves an unreadable file aside before anything is written there.
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, statSync } from 'node:fs'
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path'
import { z } from 'zod'
import { SESSION_FORMAT, SESSION_VERSION, sessionFileSchema, type SessionFile } from '../../common/contract'
import { describeZodError } from '../../common/zod-error'
import { FtError } from '../../common/errors'
import { moveAside, readRegularFile, SafeReadError, utf8Text, writeFileAtomic } from '../files/safe-io'
import { pathText } from '../../common/text'

export { writeFileAtomic }

export { SESSION_FORMAT, SESSION_VERSION }
export const SESSION_EXT = '.ftsession'
/** Sessions hold UI state, labels and saved corpus scores: tens of MB at most. */
export const MAX_SESSION_BYTES = 256 * 1024 * 1024
/** The autosave slots, one per bundle, inside the user-data folder. */
export const AUTOSAVE_DIR = 'autosave'

export function writeSessionFile(path: string, session: SessionFile): void {
  try {
    writeFileAtomic(path, `${JSON.stringify(session, null, 2)}\n`)
  } catch (e) {
    throw new FtError('io', `cannot write session ${pathText(path)} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check that the folder exists and is writable`)
  }
}

function readSessionBytes(path: string): string {
  try {
    return utf8Text(readRegularFile(path, { maxBytes: MAX_SESSION_BYTES, what: 'session file' }))
  } catch (e) {
    if (!(e instanceof SafeReadError)) throw e
    throw new FtError(e.code === 'not_found' ? 'not_found' : e.code === 'io' ? 'io' : 'invalid_request', e.message)
  }
}

/** Parses a session file's text; every failure names the file and says what to do, and never quotes it. */
export function parseSessionText(text: string, path: string): SessionFile {
  const where = pathText(path)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // V8's message quotes the text it choked on: never pass it on (the file may be anything).
    throw new FtError('session_corrupt', `session file ${where} is not valid JSON (damaged or not a session); it was left as it is`)
  }
  const head = z.object({ format: z.string(), version: z.number() }).safeParse(json)
  if (!head.success || head.data.format !== SESSION_FORMAT) {
    throw new FtError('session_corrupt', `${where} is not a Feature Tracer session (no "format": "${SESSION_FORMAT}"); it was left as it is`)
  }
  if (head.data.version > SESSION_VERSION) {
    throw new FtError(
      'session_future_version',
      `session file ${where} has version ${head.data.version}, written by a newer Feature Tracer (this one reads up to ${SESSION_VERSION}); update the app. The file was left as it is`,
    )
  }
  const parsed = sessionFileSchema.safeParse(json)
  if (!parsed.success) {
    throw new FtError('session_corrupt', `session file ${where} is damaged (${describeZodError(parsed.error)}); it was left as it is`)
  }
  return { ...parsed.data, format: SESSION_FORMAT }
}

export function readSessionFile(path: string): SessionFile {
  return parseSessionText(readSessionBytes(path), path)
}

/** True when `child` is `parent` or inside it (both real, absolute paths). */
function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

/** Refuses a path a session may not be written to; see the file's header for the rules. */
export function checkSessionSavePath(path: string, appDir: string): void {
  const where = pathText(path)
  if (!isAbsolute(path)) throw new FtError('invalid_request', `session path ${where} is relative; give the full path (e.g. /home/you/work${SESSION_EXT})`)
  if (extname(path) !== SESSION_EXT) throw new FtError('invalid_request', `session files end in ${SESSION_EXT}; ${where} does not (rename it to …${SESSION_EXT})`)
  const dir = dirname(path)
  let realDir: string
  try {
    realDir = realpathSync(dir)
  } catch {
    throw new FtError('not_found', `the folder of ${where} does not exist; create it or choose another`)
  }
  if (isInside(realDir, realOrSelf(appDir))) {
    throw new FtError('invalid_request', `${where} is inside Feature Tracer's own folder (labels, autosaves); save the session somewhere else, e.g. your home folder`)
  }
  let st
  try {
    st = lstatSync(path)
  } catch {
    return // a new file
  }
  if (st.isSymbolicLink()) throw new FtError('invalid_request', `${where} is a symbolic link; save to the file it points to, or to a new name`)
  if (!st.isFile()) throw new FtError('invalid_request', `${where} exists and is not a file; choose another name`)
  try {
    readSessionFile(path)
  } catch (e) {
    const why = e instanceof FtError && e.code === 'session_future_version' ? 'it was written by a newer Feature Tracer' : 'it is not a session file this app can read'
    throw new FtError('invalid_request', `${where} exists and ${why}, so it was not replaced; choose another name or move that file`)
  }
}

/** The autosave slot of a bundle. */
export function autosavePath(userDataDir: string, bundleHash: string): string {
  return join(userDataDir, AUTOSAVE_DIR, `${bundleHash}${SESSION_EXT}`)
}

/** A file that could not be read and was moved aside: where it is now, and why. */
export interface MovedAside {
  from: string
  to: string
  reason: string
}

export type AutosaveRead = { session: SessionFile | null; movedAside: MovedAside | null }

/**
 * Reads a bundle's autosave slot. A file there that cannot be read (damaged, newer version, another
 * bundle's) is moved aside under a time-stamped name before anything is written to the slot.
 */
export function readAutosave(slot: string, bundleHash: string): AutosaveRead {
  if (!existsSync(slot)) return { session: null, movedAside: null }
  let reason: string
  try {
    const session = readSessionFile(slot)
    if (session.bundle.hash === bundleHash) return { session, movedAside: null }
    reason = `it belongs to another bundle (${pathText(session.bundle.path)})`
  } catch (e) {
    reason = e instanceof Error ? e.message : String(e)
  }
  const to = moveAside(slot, 'unreadable')
  return { session: null, movedAside: { from: slot, to, reason } }
}

/** What this process last wrote to each autosave slot (size, mtime, inode): a slot still so needs no re-read. */
const written = new Map<string, string>()
const statKey = (path: string): string | null => {
  try {
    const st = statSync(path)
    return `${st.size}:${st.mtimeMs}:${st.ino}`
  } catch {
    return null
  }
}

/**
 * Writes a bundle's autosave slot. A file there that this process did not write last (another process's,
 * or one changed since) is read first, and moved aside if it cannot be read, so nothing is overwritten
 * that could not be loaded; a slot unchanged since our last write is not read again (sessions with
 * whole-corpus scores are megabytes, and autosave runs every few seconds).
 */
export function writeAutosave(slot: string, session: SessionFile): MovedAside | null {
  const known = written.get(slot)
  const movedAside = known !== undefined && known === statKey(slot) ? null : readAutosave(slot, session.bundle.hash).movedAside
  mkdirSync(dirname(slot), { recursive: true })
  writeSessionFile(slot, session)
  const key = statKey(slot)
  if (key) written.set(slot, key)
  return movedAside
}

/** The bundle folder of the newest readable autosave (the Electron window reopens it), or null. */
export function lastAutosavedBundle(userDataDir: string): string | null {
  const dir = join(userDataDir, AUTOSAVE_DIR)
  let names: string[] = []
  try {
    names = readdirSync(dir).filter((n) => /^[0-9a-f]{64}\.ftsession$/.test(n))
  } catch {
    // No slots yet.
  }
  // The one slot of versions before per-bundle slots, until the workbench moves it into place.
  const legacy = join(userDataDir, `autosave${SESSION_EXT}`)
  const files = [...names.map((n) => join(dir, n)), ...(existsSync(legacy) ? [legacy] : [])]
  const newest = files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  for (const file of newest) {
    try {
      return readSessionFile(file).bundle.path
    } catch {
      // Unreadable: the workbench moves it aside when that bundle opens; try the next.
    }
  }
  return null
}

/**
 * Before per-bundle slots there was one autosave.ftsession: move it into its bundle's slot (or aside, if it
 * cannot be read), so an upgrade loses nothing.
 */
export function migrateLegacyAutosave(userDataDir: string): MovedAside | null {
  const legacy = join(userDataDir, `autosave${SESSION_EXT}`)
  if (!existsSync(legacy)) return null
  mkdirSync(join(userDataDir, AUTOSAVE_DIR), { recursive: true })
  try {
    const session = readSessionFile(legacy)
    const slot = autosavePath(userDataDir, session.bundle.hash)
    if (!existsSync(slot)) {
      renameSync(legacy, slot)
      return null
    }
    return { from: legacy, to: moveAside(legacy, 'older'), reason: 'a newer autosave of the same bundle exists' }
  } catch (e) {
    return { from: legacy, to: moveAside(legacy, 'unreadable'), reason: e instanceof Error ? e.message : String(e) }
  }
}
