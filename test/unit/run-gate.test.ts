// The compute process's scheduling (main/compute/run-gate.ts) and its one LRU (main/compute/lru.ts):
// one run at a time, a click's runs before a batch's, a cancelled request gets no further run.
import { describe, expect, it } from 'vitest'
import { Lru } from '../../main/compute/lru'
import { RunCancelledError, RunGate } from '../../main/compute/run-gate'

const tick = () => new Promise((r) => setTimeout(r, 5))

describe('RunGate', () => {
  it('runs one at a time, point runs ahead of waiting scope runs, each lane in order', async () => {
    const gate = new RunGate()
    const order: string[] = []
    let active = 0
    const run = (name: string, lane: 'point' | 'scope') =>
      gate.through({ lane }, async () => {
        expect(++active).toBe(1)
        order.push(name)
        await tick()
        active--
      })
    await Promise.all([run('s1', 'scope'), run('s2', 'scope'), run('s3', 'scope'), run('p1', 'point'), run('p2', 'point')])
    expect(order).toEqual(['s1', 'p1', 'p2', 's2', 's3'])
  })

  it('keeps scope runs waiting for the whole of a point request, its pauses between runs included', async () => {
    const gate = new RunGate()
    const order: string[] = []
    const scope = (async () => {
      for (let i = 0; i < 3; i++) {
        await gate.through({ lane: 'scope' }, async () => {
          order.push(`s${i}`)
          await tick()
        })
      }
    })()
    await tick()
    const point = gate.request('point', async () => {
      for (let i = 0; i < 3; i++) {
        await gate.through({ lane: 'point' }, async () => void order.push(`p${i}`))
        await tick() // JavaScript between its runs: the batch must not take the gate meanwhile
      }
    })
    await Promise.all([scope, point])
    expect(order).toEqual(['s0', 'p0', 'p1', 'p2', 's1', 's2'])
  })

  it('refuses a run to a cancelled request, before or while it waits, and moves on', async () => {
    const gate = new RunGate()
    const ac = new AbortController()
    const order: string[] = []
    const first = gate.through({}, async () => {
      order.push('first')
      await tick()
    })
    const waiting = gate.through({ signal: ac.signal }, async () => void order.push('cancelled'))
    const after = gate.through({}, async () => void order.push('after'))
    ac.abort()
    await expect(waiting).rejects.toBeInstanceOf(RunCancelledError)
    await Promise.all([first, after])
    expect(order).toEqual(['first', 'after'])
    await expect(gate.through({ signal: ac.signal }, async () => 1)).rejects.toBeInstanceOf(RunCancelledError)
    expect(await gate.through({}, async () => 2)).toBe(2)
  })
})

describe('Lru', () => {
  it('keeps the most recent entries within the budget, always the newest, and evicts in order', () => {
    const evicted: string[] = []
    const lru = new Lru<string, string>(10, (v) => evicted.push(v))
    lru.set('a', 'A', 4)
    lru.set('b', 'B', 4)
    expect(lru.get('a')).toBe('A') // a is now the most recent
    lru.set('c', 'C', 4)
    expect(evicted).toEqual(['B'])
    expect(lru.keys()).toEqual(['a', 'c'])
    lru.set('big', 'BIG', 50) // over the budget alone: kept, everything else goes
    expect(lru.keys()).toEqual(['big'])
    expect(evicted).toEqual(['B', 'A', 'C'])
    lru.makeRoom(1)
    expect(lru.keys()).toEqual([])
    expect(lru.clear()).toEqual([])
  })
})
