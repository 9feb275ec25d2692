// The tabs store's trace tabs: one tab per point, pinned ones kept by the session, and a saved session
// from another version or edited by hand restored as far as it makes sense, never fatally.
import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { useSettingsStore } from '../../renderer/stores/settings'
import { traceTabId, useTabsStore } from '../../renderer/stores/tabs'

describe('trace tabs', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('opens one tab per point and activates the one already open', () => {
    const tabs = useTabsStore()
    const a = tabs.openTrace({ feature: 3, sample: 1, pos: 7 })
    tabs.openFeature(3)
    const b = tabs.openTrace({ feature: 3, sample: 1, pos: 7 })
    expect(b).toBe(a)
    expect(tabs.traceTabs).toHaveLength(1)
    expect(tabs.active).toBe(a)
    expect(tabs.traceTab(a)).toMatchObject({ kind: 'trace', pinned: false, convention: 'u', head: null, sourcePos: null })
  })

  it('opens a new trace in the convention the settings prefer, leaving open ones as they are', () => {
    const tabs = useTabsStore()
    const a = tabs.openTrace({ feature: 3, sample: 1, pos: 7 })
    useSettingsStore().traceConvention = 'v'
    const b = tabs.openTrace({ feature: 3, sample: 1, pos: 8 })
    expect(tabs.traceTab(a)?.convention).toBe('u')
    expect(tabs.traceTab(b)?.convention).toBe('v')
  })

  it('keeps prompt points apart by their text and token, with short ids', () => {
    const p = (prompt: string, token: number) => traceTabId({ feature: 1, prompt, token })
    expect(p('hello world', 2)).not.toBe(p('hello world!', 2))
    expect(p('hello world', 2)).not.toBe(p('hello world', 3))
    expect(p('x'.repeat(10_000), 0).length).toBeLessThan(40)
    expect(traceTabId({ feature: 1, sample: 2, pos: 3 })).toBe('trace:1:2/3')
  })

  it('closes a trace tab and activates its neighbour', () => {
    const tabs = useTabsStore()
    tabs.openFeature(0)
    const a = tabs.openTrace({ feature: 0, sample: 0, pos: 1 })
    const b = tabs.openTrace({ feature: 0, sample: 0, pos: 2 })
    tabs.close(b)
    expect(tabs.active).toBe(a)
    tabs.close(a)
    expect(tabs.active).toBe('feature:0')
    expect(tabs.traceTabs).toEqual([])
  })

  it('restores saved trace tabs as pinned, skipping malformed points and duplicates', () => {
    const tabs = useTabsStore()
    tabs.restore(
      [
        { id: 'feature:2', kind: 'feature', featureId: 2 },
        { id: 'x', kind: 'trace', point: { feature: 2, sample: 4, pos: 8 }, convention: 'u', head: 1, sourcePos: 5 },
        { id: 'y', kind: 'trace', point: { feature: 2, sample: 4, pos: 8 } },
        { id: 'w', kind: 'trace', point: { feature: 3, sample: 0, pos: 1 }, convention: 'v' },
        { id: 'z', kind: 'trace', point: { feature: 2, prompt: 'def f', token: 1 }, head: -1 },
        { id: 'bad1', kind: 'trace', point: { feature: -1, sample: 0, pos: 0 } },
        { id: 'bad2', kind: 'trace', point: { feature: 1, prompt: '', token: 0 } },
        { id: 'bad3', kind: 'trace' },
        { id: 'future', kind: 'hologram' },
      ],
      'trace:2:4/8',
    )
    expect(tabs.featureTabs.map((t) => t.id)).toEqual(['feature:2'])
    expect(tabs.traceTabs).toEqual([
      { id: 'trace:2:4/8', kind: 'trace', point: { feature: 2, sample: 4, pos: 8 }, pinned: true, convention: 'u', head: 1, sourcePos: 5 },
      // A saved v stays v though new traces open in u.
      { id: 'trace:3:0/1', kind: 'trace', point: { feature: 3, sample: 0, pos: 1 }, pinned: true, convention: 'v', head: null, sourcePos: null },
      { id: traceTabId({ feature: 2, prompt: 'def f', token: 1 }), kind: 'trace', point: { feature: 2, prompt: 'def f', token: 1 }, pinned: true, convention: 'v', head: null, sourcePos: null },
    ])
    expect(tabs.active).toBe('trace:2:4/8')
  })

  it('restores an unpinned trace as unpinned (older files, without the flag, held pinned ones only)', () => {
    const tabs = useTabsStore()
    tabs.restore([{ id: 'a', kind: 'trace', point: { feature: 1, sample: 0, pos: 3 }, pinned: false }], null)
    expect(tabs.traceTabs.map((t) => t.pinned)).toEqual([false])
    expect(tabs.active).toBe('features')
  })

  it('closes the other tabs, or all to the right, keeping the fixed ones', () => {
    const tabs = useTabsStore()
    tabs.openFeature(1)
    tabs.openFeature(2)
    const t = tabs.openTrace({ feature: 2, sample: 0, pos: 1 })
    tabs.openFeature(3)
    tabs.closeToRight('feature:2')
    expect(tabs.featureTabs.map((x) => x.id)).toEqual(['feature:1', 'feature:2'])
    expect(tabs.traceTabs).toEqual([]) // trace tabs come after the feature tabs in the strip
    expect(tabs.active).toBe('feature:2')
    tabs.openTrace({ feature: 2, sample: 0, pos: 1 })
    expect(tabs.traceTab(t)).toBeDefined()
    tabs.closeOthers('feature:1')
    expect(tabs.tabs.map((x) => x.id)).toEqual(['features', 'tokens', 'prompt', 'compare', 'cache', 'feature:1'])
    expect(tabs.active).toBe('feature:1')
    tabs.closeOthers('features')
    expect(tabs.featureTabs).toEqual([])
  })
})
