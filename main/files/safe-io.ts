// File access for paths that come from outside (a typed path, a bundle folder, a session file): every
// read checks with fstat that it holds a regular file of bounded size before reading a byte, and never
// blocks on a FIFO or device; messages name the path (shortened) and never quote the file's content.
// Files the app cannot read are moved aside under a new name, never overwritten. Imports nothing of the
// app, so every domain can use it.
import { closeSync, constants, existsSync, fsyncSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import { pathText } from '../../common/text'

export type SafeReadErrorCode = 'not_found' | 'not_regular' | 'too_large' | 'io'

export class SafeReadError extends Error {
  override readonly name = 'SafeReadError'
  constructor(
    readonly code: SafeReadErrorCode,
    message: string,
  ) {
    super(message)
  }
}

export function bytesText(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`
  return `${n} bytes`
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer and hold the whole server;
// on a regular file it changes nothing. Windows has no such flag (and no FIFOs at a path).
const OPEN_FLAGS = constants.O_RDONLY | (process.platform === 'win32' ? 0 : constants.O_NONBLOCK)

export interface SafeReadOptions {
  /** Largest size accepted, in bytes; larger files are refused before reading. */
  maxBytes: number
  /** What the file is, for messages ("session file", "bundle.json"). */
  what: string
}

/** Reads a whole regular file of at most `maxBytes`; a SafeReadError otherwise. */
export function readRegularFile(path: string, opts: SafeReadOptions): Buffer {
  return readRegular(path, opts).bytes
}

/** readRegularFile, with the fstat of the file that was read (size, mtime, inode of those very bytes). */
export function readRegular(path: string, opts: SafeReadOptions): { bytes: Buffer; stat: Stats } {
  return withRegular(path, opts, (read, stat) => {
    const buf = Buffer.allocUnsafe(stat.size)
    const n = read(buf, 0)
    return { bytes: n === stat.size ? buf : buf.subarray(0, n), stat }
  })
}

/**
 * Opens a regular file of at most `maxBytes` (checked as readRegular does) and hands `use` a reader of
 * pieces: read(into, position) fills `into` from `position` and returns how many bytes it read (fewer only
 * at the end). For files too large to hold (a bundle's weights, in a process that only checks them).
 */
export function withRegular<T>(path: string, opts: SafeReadOptions, use: (read: (into: Uint8Array, position: number) => number, stat: Stats) => T): T {
  let fd: number
  try {
    fd = openSync(path, OPEN_FLAGS)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new SafeReadError('not_found', `${opts.what} ${pathText(path)} does not exist`)
    if (code === 'EISDIR') throw new SafeReadError('not_regular', `${opts.what} ${pathText(path)} is a folder, not a file`)
    throw new SafeReadError('io', `${opts.what} ${pathText(path)} cannot be opened (${code ?? 'error'}); check its permissions`)
  }
  try {
    let st: Stats
    try {
      st = fstatSync(fd)
    } catch (e) {
      throw new SafeReadError('io', `${opts.what} ${pathText(path)} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    if (!st.isFile()) throw new SafeReadError('not_regular', `${opts.what} ${pathText(path)} is not a regular file (${kindOf(st)}); choose a file`)
    if (st.size > opts.maxBytes) {
      throw new SafeReadError('too_large', `${opts.what} ${pathText(path)} is ${bytesText(st.size)}, more than the ${bytesText(opts.maxBytes)} a ${opts.what} may have`)
    }
    const read = (into: Uint8Array, position: number): number => {
      let off = 0
      while (off < into.byteLength) {
        let n: number
        try {
          n = readSync(fd, into, off, into.byteLength - off, position + off)
        } catch (e) {
          throw new SafeReadError('io', `${opts.what} ${pathText(path)} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
        }
        if (n === 0) break
        off += n
      }
      return off
    }
    return use(read, st)
  } finally {
    closeSync(fd)
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device'
  return 'not a file'
}

/** Text of a UTF-8 file, without a leading byte-order mark (editors on Windows write one). */
export function utf8Text(bytes: Buffer): string {
  const text = bytes.toString('utf-8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** A compact UTC time for file names: 20261130T101502Z. */
export function fileStamp(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

/**
 * Renames `path` to `<name>.<tag>-<time><ext>` beside it (a number is added if that exists too) and
 * returns the new path; `companions` (e.g. SQLite's -wal/-shm) move with it under the same new name.
 * Nothing is overwritten: the rename targets a name that does not exist.
 */
export function moveAside(path: string, tag: string, companions: readonly string[] = []): string {
  const dir = dirname(path)
  const ext = extname(path)
  const stem = basename(path, ext)
  const stamp = fileStamp()
  for (let i = 0; ; i++) {
    const target = join(dir, `${stem}.${tag}-${stamp}${i ? `-${i}` : ''}${ext}`)
    if (existsSync(target) || companions.some((c) => existsSync(target + c))) continue
    renameSync(path, target)
    for (const c of companions) if (existsSync(path + c)) renameSync(path + c, target + c)
    return target
  }
}

/** Replaces `path` with `bytes` atomically. */
export function writeFileAtomic(path: string, bytes: string | Uint8Array): void {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`)
  // 'wx': the temp name is ours alone; never follow or truncate something already there.
  const fd = openSync(temp, 'wx', 0o644)
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
