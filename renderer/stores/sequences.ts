import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { MAX_SEQUENCE_SAMPLES, type FeatureSequence } from '../../common/contract'
import { call } from '../api'
import type { ColourScale } from '../components/grid/coolwarm'

// The examples' running text: each shown corpus sequence with one feature's activation at every position
// (feature.sequences). The summary holds only the rows, so the grids draw the rows at once and ask here for
// the sequences of the rows they render; the asks of one moment go out together, in pieces of the
// channel's cap, and the shading fills in when the answer comes.

/** Sequences kept (a demo sequence is 128 tokens: a few MB at most); the oldest go first. */
const KEEP = 4000

/** A sequence as running text draws it: display texts, token ids and one value per position. */
export interface ShownSequence {
  tokens: readonly string[]
  tokenIds: readonly number[]
  values: readonly number[]
}

/** The whole sequence of one example, as the expanded view shows it. */
export interface ExpandedSequence {
  title: string
  /** The example's own token: marked. */
  pos: number
  /** The grid's colour scale and what its values are, so the expanded text is painted as the row was. */
  scale: ColourScale
  valueName: string
  /** The sequence (reactive: it may still be on its way). */
  shown: () => ShownSequence | undefined
}

const key = (feature: number, sample: number) => `${feature}/${sample}`

export const useSequencesStore = defineStore('sequences', () => {
  const known = new Map<string, FeatureSequence>()
  /** Bumped when sequences arrive: the cells that read one depend on it (the map is not reactive). */
  const revision = ref(0)
  /** Asked (or known): not asked again. */
  const asked = new Set<string>()
  let queue = new Map<number, Set<number>>()
  let scheduled = false
  /** Answers to asks made before the last clear() (another bundle) are dropped. */
  let generation = 0
  const expanded = shallowRef<ExpandedSequence | null>(null)

  function get(feature: number, sample: number): FeatureSequence | undefined {
    void revision.value
    return known.get(key(feature, sample))
  }

  /** Asks for these sequences of `feature` unless already known or asked; answers arrive together, shortly. */
  function want(feature: number, samples: Iterable<number>): void {
    for (const s of samples) {
      const k = key(feature, s)
      if (asked.has(k)) continue
      asked.add(k)
      let set = queue.get(feature)
      if (!set) queue.set(feature, (set = new Set()))
      set.add(s)
    }
    if (queue.size && !scheduled) {
      scheduled = true
      // Every cell a grid renders in one pass asks before this runs: one request for all of them.
      setTimeout(() => void flush(), 0)
    }
  }

  async function flush(): Promise<void> {
    scheduled = false
    const asks = queue
    queue = new Map()
    const gen = generation
    const pieces: Promise<void>[] = []
    for (const [feature, set] of asks) {
      const all = [...set]
      for (let i = 0; i < all.length; i += MAX_SEQUENCE_SAMPLES) {
        const samples = all.slice(i, i + MAX_SEQUENCE_SAMPLES)
        pieces.push(
          call('feature.sequences', { feature, samples }).then(
            (res) => {
              if (gen !== generation) return
              for (const s of res.sequences) known.set(key(feature, s.sample), Object.freeze(s))
              while (known.size > KEEP) {
                const oldest = known.keys().next().value as string
                known.delete(oldest)
                asked.delete(oldest)
              }
              revision.value++
            },
            // No shading for these rows for now: their plain context stays, and the next time a cell is drawn
            // (a scroll, another answer) it asks again (the compute process may have been busy or restarting).
            () => {
              if (gen === generation) for (const s of samples) asked.delete(key(feature, s))
            },
          ),
        )
      }
    }
    await Promise.all(pieces)
  }

  function expand(e: ExpandedSequence): void {
    expanded.value = e
  }

  /** Another bundle: nothing kept holds. */
  function clear(): void {
    generation++
    known.clear()
    asked.clear()
    queue = new Map()
    expanded.value = null
    revision.value++
  }

  return { revision, get, want, expand, expanded, clear }
})
