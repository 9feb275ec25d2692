// sha256 of bundle files, remembered by (path, size, mtime, inode) so that verifying a bundle costs one
// hash per file per change instead of one per open (main, the compute process and each job open the bundle).
// A JSON file in the user cache folder, replaced atomically; one that cannot be read is moved aside.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, type Stats } from 'node:fs'
import { join } from 'node:path'
import { moveAside, readRegularFile, utf8Text, writeFileAtomic } from '../files/safe-io'

const FILE = 'file-hashes.json'
const MAX_ENTRIES = 256

interface Entry {
  size: number
  mtimeMs: number
  ino: number
  sha256: string
  usedAt: number
}

export class HashCache {
  private entries = new Map<string, Entry>()
  private dirty = false

  constructor(private readonly dir: string | null) {
    if (!dir) return
    const path = join(dir, FILE)
    if (!existsSync(path)) return
    try {
      const json = JSON.parse(utf8Text(readRegularFile(path, { maxBytes: 4 << 20, what: 'hash cache' }))) as { entries?: Record<string, Entry> }
      for (const [k, e] of Object.entries(json.entries ?? {})) {
        if (typeof e?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256) && Number.isFinite(e.size) && Number.isFinite(e.mtimeMs)) this.entries.set(k, e)
      }
    } catch {
      // Only derived data, but the rule holds for every file: moved aside, never overwritten.
      try {
        moveAside(path, 'unreadable')
      } catch {
        this.entries.clear()
      }
    }
  }

  /** The file's sha256: remembered when path, size, mtime and inode are unchanged, else hashed from `bytes`. */
  sha256(path: string, stat: Stats, bytes: Uint8Array): string {
    const known = this.known(path, stat)
    if (known) return known
    // The bytes are in memory already (the bundle keeps them); hashing them in 8 MiB slices is the same
    // stream a file read would feed, without reading the file twice.
    const h = createHash('sha256')
    for (let off = 0; off < bytes.byteLength; off += 8 << 20) h.update(bytes.subarray(off, Math.min(bytes.byteLength, off + (8 << 20))))
    const sha256 = h.digest('hex')
    this.remember(path, stat, sha256)
    return sha256
  }

  /** The remembered sha256 of the file, if path, size, mtime and inode are unchanged. */
  known(path: string, stat: Stats): string | undefined {
    const known = this.entries.get(path)
    if (!known || known.size !== stat.size || known.mtimeMs !== stat.mtimeMs || known.ino !== stat.ino) return undefined
    known.usedAt = Date.now()
    return known.sha256
  }

  /** Remembers a sha256 computed elsewhere (a file hashed as it was read in pieces). */
  remember(path: string, stat: Stats, sha256: string): void {
    this.entries.set(path, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256, usedAt: Date.now() })
    this.dirty = true
  }

  /** Writes the remembered hashes back (newest MAX_ENTRIES); a failure only costs a re-hash next time. */
  save(): void {
    if (!this.dir || !this.dirty) return
    const kept = [...this.entries].sort((a, b) => b[1].usedAt - a[1].usedAt).slice(0, MAX_ENTRIES)
    try {
      mkdirSync(this.dir, { recursive: true })
      writeFileAtomic(join(this.dir, FILE), JSON.stringify({ version: 1, entries: Object.fromEntries(kept) }))
      this.dirty = false
    } catch {
      // Not writable (a read-only cache folder): the hashes are computed again next time.
    }
  }
}
