// Progressive builds (issue 13 item 3): the partial summary a build writes as it goes, read mid-build
// and after a kill, against a recount over exactly the tokens it says it covers from the engine's own CSR
// output (computed here, chunk by chunk as the build cuts them); then the finished cache drops it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { loadBundle, type Bundle } from '../../main/bundle'
import { corpusViewOf } from '../../main/bundle/corpus'
import type { ComputeEngine } from '../../main/compute/api'
import { OrtEngine } from '../../main/compute/ort-engine'
import { runBuild, type BuildInput } from '../../main/cache/build'
import { cacheKeyOf } from '../../main/cache/bundle-link'
import { CacheReader } from '../../main/cache/query'
import { openCacheDb, readMeta, tableNames } from '../../main/cache/schema'
import { dumpTables, tempDir, TINY } from './helpers/cache'

const CHUNK_SEQS = 2
const SLOW = 300_000

interface Firing {
  token: number
  value: number
}

let bundle: Bundle
let engine: OrtEngine
/** Per feature, its firings in corpus order, from the engine run chunk by chunk like the build. */
let firings: Firing[][]
let chunkTokens: number

beforeAll(async () => {
  bundle = await loadBundle(TINY)
  engine = await OrtEngine.create(bundle, { eagerSae: true })
  const { nSeq, seqLen, data } = bundle.tokens
  chunkTokens = CHUNK_SEQS * seqLen
  firings = Array.from({ length: bundle.config.sae.d_sae }, () => [])
  for (let s0 = 0; s0 < nSeq; s0 += CHUNK_SEQS) {
    const s1 = Math.min(nSeq, s0 + CHUNK_SEQS)
    const acts = await engine.saeActs(data.subarray(s0 * seqLen, s1 * seqLen), s1 - s0, seqLen)
    for (let r = 0; r < acts.nTokens; r++) {
      for (let j = acts.rowPtr[r]; j < acts.rowPtr[r + 1]; j++) firings[acts.featureIds[j]].push({ token: s0 * seqLen + r, value: acts.values[j] })
    }
  }
}, SLOW)

afterAll(async () => {
  await engine?.dispose()
})

function reader(path: string): CacheReader {
  return new CacheReader({ path, key: cacheKeyOf(bundle), view: corpusViewOf(bundle), logitWeights: null })
}

/** The reader's partial answers equal a recount over the first `tokens` tokens; 0 < tokens < the corpus. */
function expectRecount(r: CacheReader, tokens: number): void {
  const total = bundle.tokens.nSeq * bundle.tokens.seqLen
  const list = r.list()
  expect(list.partial).toEqual({ doneTokens: tokens, totalTokens: total })
  // A partial summary keeps no per-position split: its numbers include BOS, and it says so.
  expect(list.bos).toBe('not_separable')
  let firingFeatures = 0
  for (const f of list.features) {
    const mine = firings[f.id].filter((x) => x.token < tokens)
    const sum = mine.reduce((s, x) => s + x.value, 0)
    expect(f.count).toBe(mine.length)
    expect(f.density).toBeCloseTo(mine.length / tokens, 12)
    expect(f.max).toBe(mine.reduce((m, x) => Math.max(m, x.value), 0))
    expect(f.mean).toBeCloseTo(mine.length ? sum / mine.length : 0, 6)
    expect([f.topTokenId, f.topToken, f.f1, f.precision, f.recall]).toEqual([null, null, null, null, null])
    if (mine.length) firingFeatures++
  }
  expect(firingFeatures).toBeGreaterThan(10)
  // The top activations of a few features, strongest first, ties to the earlier token.
  for (const id of [0, 7, 21, 63]) {
    const want = firings[id]
      .filter((x) => x.token < tokens)
      .sort((a, b) => b.value - a.value || a.token - b.token)
      .slice(0, 100)
    const d = r.detail(id, 100)
    expect(d.partial).toEqual({ doneTokens: tokens, totalTokens: total })
    expect(d.bos).toBe('not_separable')
    expect(d.top.map((t) => [t.batch * bundle.tokens.seqLen + t.pos, t.activation])).toEqual(want.map((x) => [x.token, x.value]))
    expect([d.histogram.counts, d.intervals, d.quantiles, d.below]).toEqual([[], [], [], []])
  }
}

function input(path: string, extra: Partial<BuildInput>): BuildInput {
  return {
    db: openCacheDb(path),
    engine,
    key: cacheKeyOf(bundle),
    corpus: bundle.tokens.data,
    vocabSize: bundle.config.model.d_vocab,
    chunkSeqs: CHUNK_SEQS,
    ...extra,
  }
}

/** The engine, failing (like a killed process) on its call number `failAt` (0-based). */
function failingEngine(failAt: number): ComputeEngine {
  let calls = 0
  return new Proxy(engine, {
    get(target, prop) {
      if (prop === 'saeActs') {
        return (...args: Parameters<ComputeEngine['saeActs']>) => {
          if (calls++ === failAt) return Promise.reject(new Error('killed'))
          return target.saeActs(...args)
        }
      }
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

describe('progressive builds: the partial summary', () => {
  it('mid-build, answers what the committed chunks hold, and the finished cache drops it', async () => {
    const dir = tempDir()
    const path = join(dir, 'cache.sqlite')
    const r = reader(path)
    const seen: number[] = []
    const inp = input(path, {
      partialEveryMs: 0,
      onProgress: (p) => {
        // Synchronous: the build waits while the reader looks (after chunks 3 and 7).
        if (p.phase === 'compute' && (p.doneTokens === 3 * chunkTokens || p.doneTokens === 7 * chunkTokens)) {
          expect(r.status().state).toBe('partial')
          expectRecount(r, p.doneTokens)
          seen.push(p.doneTokens)
        }
      },
    })
    await runBuild(inp)
    expect(seen).toEqual([3 * chunkTokens, 7 * chunkTokens])
    expect(r.status().state).toBe('ready')
    expect(r.list().partial).toBeUndefined()
    expect(r.detail(7, 100).partial).toBeUndefined()
    expect(tableNames(inp.db)).not.toContain('partial_feature')
    expect(tableNames(inp.db)).not.toContain('partial_top')
    expect(readMeta(inp.db).partial_tokens).toBeUndefined()
    inp.db.close()
    r.close()
  }, SLOW)

  it('written every so often: covers a prefix of the committed chunks, consistently', async () => {
    const dir = tempDir()
    const path = join(dir, 'cache.sqlite')
    const r = reader(path)
    let checked = false
    const inp = input(path, {
      partialEveryMs: 1e9,
      onProgress: (p) => {
        if (p.phase === 'compute' && p.doneTokens === 5 * chunkTokens) {
          // Five chunks committed; the partial summary was written with the first one only.
          expectRecount(r, chunkTokens)
          checked = true
        }
      },
    })
    await runBuild(inp)
    expect(checked).toBe(true)
    inp.db.close()
    r.close()
  }, SLOW)

  it('after a kill, answers the chunks it wrote; a resumed build adds every committed chunk again and ends identical', async () => {
    const dir = tempDir()
    const path = join(dir, 'cache.sqlite')
    const r = reader(path)
    // Killed at its 5th chunk; it wrote the partial summary with its 1st only.
    const killed = input(path, { engine: failingEngine(4), partialEveryMs: 1e9 })
    await expect(runBuild(killed)).rejects.toThrow('killed')
    killed.db.close()
    expect(r.status()).toMatchObject({ state: 'partial', doneTokens: 4 * chunkTokens })
    expectRecount(r, chunkTokens)

    let checked = false
    const resumed = input(path, {
      partialEveryMs: 1e9,
      onProgress: (p) => {
        if (p.phase === 'compute' && p.doneTokens === 5 * chunkTokens) {
          // The four committed chunks were added again, then the first new one written with them.
          expectRecount(r, 5 * chunkTokens)
          checked = true
        }
      },
    })
    await runBuild(resumed)
    resumed.db.close()
    expect(checked).toBe(true)
    r.close()

    const cleanPath = join(tempDir(), 'cache.sqlite')
    const clean = input(cleanPath, { partialEveryMs: null })
    await runBuild(clean)
    clean.db.close()
    expect(dumpTables(path)).toBe(dumpTables(cleanPath))
  }, SLOW)
})
