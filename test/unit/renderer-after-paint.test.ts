// The trace tab's header is painted before its grids mount (issue 14 §9): afterNextPaint waits for the
// frame after the next one, and usePaintedAfter turns true only then, once, and never after its scope
// is gone; deferred grids (createGridQueue) come after a painted frame, one per frame, in order.
// Animation frames are stubbed: each `frame()` runs the callbacks requested before it, as a browser runs
// one frame's callbacks (those they request wait for the next frame).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import { afterNextPaint, usePaintedAfter } from '../../renderer/components/after-paint'
import { createGridQueue } from '../../renderer/components/grid/deferred'

let frames = new Map<number, FrameRequestCallback>()
let ids = 0
function frame(): void {
  const now = frames
  frames = new Map()
  for (const cb of now.values()) cb(0)
}

beforeEach(() => {
  frames = new Map()
  vi.stubGlobal('requestAnimationFrame', (cb: FrameRequestCallback) => {
    frames.set(++ids, cb)
    return ids
  })
  vi.stubGlobal('cancelAnimationFrame', (id: number) => frames.delete(id))
})
afterEach(() => vi.unstubAllGlobals())

describe('afterNextPaint', () => {
  it('runs its callback in the second frame, not the first', () => {
    const cb = vi.fn()
    afterNextPaint(cb)
    frame()
    expect(cb).not.toHaveBeenCalled()
    frame()
    expect(cb).toHaveBeenCalledTimes(1)
    frame()
    expect(cb).toHaveBeenCalledTimes(1)
  })

  it('cancelled before either frame, or between them, never runs', () => {
    const early = vi.fn()
    afterNextPaint(early)()
    const late = vi.fn()
    const cancel = afterNextPaint(late)
    frame()
    cancel()
    frame()
    frame()
    expect(early).not.toHaveBeenCalled()
    expect(late).not.toHaveBeenCalled()
    expect(frames.size).toBe(0)
  })
})

describe('usePaintedAfter', () => {
  it('stays false while the source is empty, and turns true two frames after it is set', async () => {
    const trace = ref<object | null>(null)
    const scope = effectScope()
    const ready = scope.run(() => usePaintedAfter(() => trace.value))!
    frame()
    frame()
    expect(ready.value).toBe(false)
    trace.value = {}
    await nextTick()
    frame()
    expect(ready.value).toBe(false)
    frame()
    expect(ready.value).toBe(true)
    // A re-run (the result goes and comes back) does not hide the body again.
    trace.value = null
    await nextTick()
    expect(ready.value).toBe(true)
    scope.stop()
  })

  it('a scope disposed before the frames leaves nothing waiting', async () => {
    const trace = ref<object | null>({})
    const scope = effectScope()
    const ready = scope.run(() => usePaintedAfter(() => trace.value))!
    await nextTick()
    frame()
    scope.stop()
    expect(frames.size).toBe(0)
    frame()
    expect(ready.value).toBe(false)
  })
})

describe('createGridQueue', () => {
  it('lets the first grid in after a painted frame, then one grid per frame, in the order they asked', () => {
    const queue = createGridQueue()
    const turns = [queue.turn(), queue.turn(), queue.turn()]
    const released = () => turns.map((t) => t.value)
    frame()
    expect(released()).toEqual([false, false, false])
    frame()
    expect(released()).toEqual([true, false, false])
    frame()
    expect(released()).toEqual([true, true, false])
    // A grid asking meanwhile queues behind the others.
    turns.push(queue.turn())
    frame()
    expect(released()).toEqual([true, true, true, false])
    frame()
    expect(released()).toEqual([true, true, true, true])
    expect(frames.size).toBe(0)
  })

  it('releases nothing once disposed', () => {
    const queue = createGridQueue()
    const turns = [queue.turn(), queue.turn()]
    frame()
    frame()
    queue.dispose()
    frame()
    frame()
    expect(turns.map((t) => t.value)).toEqual([true, false])
    expect(frames.size).toBe(0)
  })
})
