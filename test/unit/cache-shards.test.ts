// A sharded cache build on the tiny bundle: four shards (`cache build --shard k/4`, through the CLI's
// main()) merged with `cache merge` must give the same tables, byte for byte, and the same answers as one
// build with the same chunk layout; and the merge refuses what would give anything else.
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { unwrap } from '../../main/app/dispatch'
import { main } from '../../main/transports/cli'
import { build, dumpAnswers, dumpTables, tempDir, tinyWorkbench, TINY } from './helpers/cache'
import { pokeF32 } from './helpers/safetensors-edit'

/** 24 sequences in chunks of 2: 12 chunks, 3 per shard. */
const CHUNK_SEQS = 2
const N = 4
/** Each test starts job processes; a machine shared with a training job can be very slow. */
const SLOW = 300_000

function chunkIdx(path: string): number[] {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare('SELECT idx FROM chunk ORDER BY idx').all() as { idx: number }[]).map((r) => r.idx)
  } finally {
    db.close()
  }
}

function metaOf(path: string): Record<string, string> {
  const db = new Database(path, { readonly: true })
  try {
    return Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]))
  } finally {
    db.close()
  }
}

describe('sharded cache build and merge', () => {
  let dir: string
  let env: Record<string, string>
  let shards: string[]
  let stderr: string
  /** The reference: one build of the whole corpus with the same chunk layout, summary then full. */
  const single = { summary: '', summaryAnswers: '', full: '', fullAnswers: '' }

  const cli = (args: string[]) => main(args, env)
  const merge = (out: string, files: string[], ...opts: string[]) => cli(['cache', 'merge', out, ...files, '--bundle', TINY, ...opts])

  beforeAll(async () => {
    dir = tempDir('ft-shards-')
    env = { FEATURE_TRACER_USER_DATA: join(dir, 'user'), FEATURE_TRACER_CHUNK_SEQS: String(CHUNK_SEQS) }
    shards = Array.from({ length: N }, (_, k) => join(dir, `shard-${k}.sqlite`))
    // What the CLI prints goes to stderr: kept for the assertions, out of the test log.
    stderr = ''
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk)
      return true
    })
    const codes = await Promise.all(shards.map((file, k) => cli(['cache', 'build', '--bundle', TINY, '--cache', file, '--shard', `${k}/${N}`])))
    expect(codes).toEqual([0, 0, 0, 0])

    const wb = tinyWorkbench(join(dir, 'single'), { build: { chunkSeqs: CHUNK_SEQS } })
    try {
      expect((await build(wb)).outcome).toBe('done')
      const path = unwrap(await wb.invoke('cache.status', {})).path
      single.summary = dumpTables(path)
      single.summaryAnswers = await dumpAnswers(wb)
      expect((await build(wb, { full: true })).outcome).toBe('done')
      single.full = dumpTables(path)
      single.fullAnswers = await dumpAnswers(wb)
    } finally {
      await wb.close()
    }
  }, SLOW)
  afterAll(() => vi.restoreAllMocks())

  it('builds each shard as its own slice of the chunks, reported as a shard to merge', async () => {
    for (let k = 0; k < N; k++) {
      expect(chunkIdx(shards[k])).toEqual([3 * k, 3 * k + 1, 3 * k + 2])
      expect(metaOf(shards[k]).shard).toBe(`${k}/${N}`)
      expect(metaOf(shards[k]).built_at).toBeUndefined()
      expect(stderr).toContain(`shard ${k}/${N} built: ${shards[k]} (192 of the corpus's 768 tokens`)
      expect(stderr).toMatch(new RegExp(`cache build \\(shard ${k}/${N}\\): 192/192 tokens`))
    }
    expect(stderr).not.toContain('cache ready')
    const wb = tinyWorkbench(join(dir, 'status'), { cachePath: shards[1] })
    try {
      const state = unwrap(await wb.invoke('cache.status', {}))
      expect(state.state).toBe('partial')
      expect(state.doneTokens).toBe(192)
      expect(state.reason).toContain('shard 1/4')
      expect(state.reason).toContain('cache merge')
    } finally {
      await wb.close()
    }
  })

  it('merges four shards into the single build: the same tables byte for byte and the same answers, summary and full', async () => {
    const summary = join(dir, 'merged.sqlite')
    expect(await merge(summary, shards)).toBe(0)
    expect(dumpTables(summary)).toBe(single.summary)
    expect(chunkIdx(summary)).toEqual([])
    const meta = metaOf(summary)
    expect(meta.shard).toBeUndefined()
    expect(meta.full_table).toBe('0')
    expect(meta.n_chunks).toBe('12')
    // The non-BOS rows (dumpTables compares them too) are there: the tiny bundle's features fire on BOS.
    const db = new Database(summary, { readonly: true })
    expect(db.prepare('SELECT COUNT(*) FROM feature_nobos').pluck().get()).toBeGreaterThan(0)
    db.close()
    expect(meta.bos_positions).toBe('24')

    // Any order of the shards, and with the full table.
    const full = join(dir, 'merged-full.sqlite')
    expect(await merge(full, [...shards].reverse(), '--full')).toBe(0)
    expect(dumpTables(full)).toBe(single.full)
    expect(metaOf(full).full_table).toBe('1')

    for (const [path, answers] of [
      [summary, single.summaryAnswers],
      [full, single.fullAnswers],
    ]) {
      const wb = tinyWorkbench(join(dir, 'answers'), { cachePath: path })
      try {
        expect(unwrap(await wb.invoke('cache.status', {})).state).toBe('ready')
        expect(await dumpAnswers(wb)).toBe(answers)
      } finally {
        await wb.close()
      }
    }
    // Merging again replaces a cache of ours.
    expect(await merge(summary, shards, '--full')).toBe(0)
    expect(dumpTables(summary)).toBe(single.full)
    expect(readdirSync(dir).filter((f) => f.includes('.merge-'))).toEqual([])
  }, SLOW)

  it('refuses a missing or unfinished shard, naming the chunks and the shard that should hold them', async () => {
    const out = join(dir, 'gap.sqlite')
    await expect(merge(out, [shards[0], shards[1], shards[3]])).rejects.toThrow(/lack chunks 6–8 \(shard 2\/4\) of 12/)
    expect(existsSync(out)).toBe(false)
    // A shard killed after its first chunk: chunks 7 and 8 missing.
    const killed = join(dir, 'killed-2.sqlite')
    copyFileSync(shards[2], killed)
    const db = new Database(killed)
    db.prepare('DELETE FROM chunk WHERE idx > 6').run()
    db.close()
    await expect(merge(out, [shards[0], shards[1], killed, shards[3]])).rejects.toThrow(/lack chunks 7–8 \(shard 2\/4\) of 12/)
    expect(existsSync(out)).toBe(false)
    await expect(merge(out, [shards[0], shards[1], shards[2], join(dir, 'no-such.sqlite')])).rejects.toThrow(/does not exist/)
  })

  it('resumes a killed shard to the same bytes, and a whole build on a shard file completes it', async () => {
    const killed = join(dir, 'resume-2.sqlite')
    copyFileSync(shards[2], killed)
    const db = new Database(killed)
    db.prepare('DELETE FROM chunk WHERE idx = 8').run()
    db.close()
    expect(await cli(['cache', 'build', '--bundle', TINY, '--cache', killed, '--shard', `2/${N}`])).toBe(0)
    expect(chunkIdx(killed)).toEqual([6, 7, 8])
    const out = join(dir, 'resumed.sqlite')
    expect(await merge(out, [shards[0], shards[1], killed, shards[3]])).toBe(0)
    expect(dumpTables(out)).toBe(single.summary)

    const whole = join(dir, 'whole-from-shard.sqlite')
    copyFileSync(shards[0], whole)
    expect(await cli(['cache', 'build', '--bundle', TINY, '--cache', whole])).toBe(0)
    expect(metaOf(whole).shard).toBeUndefined()
    expect(dumpTables(whole)).toBe(single.summary)
  }, SLOW)

  it('refuses a shard of another bundle, a chunk that differs between two shards, and a finished cache as a shard', async () => {
    const out = join(dir, 'other.sqlite')
    // The same shards merged for a bundle whose SAE differs in one weight (no recorded hashes to refuse it).
    const other = join(dir, 'other-bundle')
    cpSync(TINY, other, { recursive: true })
    const cfg = JSON.parse(readFileSync(join(other, 'bundle.json'), 'utf-8'))
    cfg.provenance.files = {}
    writeFileSync(join(other, 'bundle.json'), JSON.stringify(cfg))
    pokeF32(join(other, 'sae.safetensors'), 'W_dec', 0, 0.125)
    await expect(cli(['cache', 'merge', out, ...shards, '--bundle', other])).rejects.toThrow(/built for another bundle: sae\.safetensors sha256 differs/)
    // One shard of another bundle among this one's.
    const foreignKey = join(dir, 'other-key-3.sqlite')
    copyFileSync(shards[3], foreignKey)
    const db = new Database(foreignKey)
    db.prepare("UPDATE meta SET value = ? WHERE key = 'tokens_sha256'").run('0'.repeat(64))
    db.close()
    await expect(merge(out, [shards[0], shards[1], shards[2], foreignKey])).rejects.toThrow(/built for another bundle: tokens\.safetensors sha256 differs/)

    // Chunk 4 in two shards: identical bytes are fine, different bytes are refused.
    expect(await merge(out, [...shards, shards[1]])).toBe(0)
    const altered = join(dir, 'altered-1.sqlite')
    copyFileSync(shards[1], altered)
    const alt = new Database(altered)
    const vals = (alt.prepare('SELECT vals FROM chunk WHERE idx = 4').get() as { vals: Buffer }).vals
    vals.writeFloatLE(vals.readFloatLE(0) + 1, 0)
    alt.prepare('UPDATE chunk SET vals = ? WHERE idx = 4').run(vals)
    alt.close()
    await expect(merge(join(dir, 'differs.sqlite'), [...shards, altered])).rejects.toThrow(/chunk 4 differs between two shards/)
    expect(existsSync(join(dir, 'differs.sqlite'))).toBe(false)

    await expect(merge(join(dir, 'again.sqlite'), [out, ...shards])).rejects.toThrow(/is a finished cache, not a shard/)
    await expect(merge(shards[0], shards)).rejects.toThrow(/is one of the shards/)
  })

  it('never writes over a file that is not a cache of ours', async () => {
    const text = join(dir, 'notes.txt')
    writeFileSync(text, 'my notes, not a cache\n')
    await expect(merge(text, shards)).rejects.toThrow(/is not a Feature Tracer cache/)
    expect(readFileSync(text, 'utf-8')).toBe('my notes, not a cache\n')
    const theirs = join(dir, 'theirs.sqlite')
    const db = new Database(theirs)
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)')
    db.close()
    const before = readFileSync(theirs)
    await expect(merge(theirs, shards)).rejects.toThrow(/another program/)
    expect(readFileSync(theirs).equals(before)).toBe(true)
    expect(readdirSync(dir).filter((f) => f.includes('.merge-'))).toEqual([])
  })

  it('refuses bad --shard values with a usage error', async () => {
    const file = join(dir, 'bad.sqlite')
    for (const bad of ['4/4', '5/4', '-1/4', '1/0', '0/0', 'a/b', '1.5/4', '2', '1/4/2', '']) {
      await expect(cli(['cache', 'build', '--bundle', TINY, '--cache', file, `--shard=${bad}`])).rejects.toThrow(/--shard must be k\/N/)
    }
    await expect(cli(['cache', 'build', '--bundle', TINY, '--cache', file, '--shard', '0/4', '--full'])).rejects.toThrow(/pass --full to cache merge/)
    await expect(cli(['features', '--bundle', TINY, '--cache', file, '--shard', '0/4'])).rejects.toThrow(/--shard belongs to cache build/)
    await expect(cli(['cache', 'merge', file])).rejects.toThrow(/needs OUT and at least one SHARD/)
    expect(existsSync(file)).toBe(false)
  })
})
