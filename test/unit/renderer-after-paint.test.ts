// The trace tab's header is painted before its grids mount (issue 14 §9): afterNextPaint waits for the
// frame after the next one, and usePaintedAfter turns true only then, once, and never after its scope
// is gone. Animation frames are stubbed: each `frame()` runs the callbacks queued before it, as a browser
// runs one frame's callbacks (those they queue wait for the next frame).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import { afterNextPaint, usePaintedAfter } from '../../renderer/components/after-paint'

let queue = new Map<number, FrameRequestCallback>()
let ids = 0
function frame(): void {
  const now = queue
  queue = new Map()
  for (const cb of now.values()) cb(0)
}

beforeEach(() => {
  queue = new Map()
  vi.stubGlobal('requestAnimationFrame', (cb: FrameRequestCallback) => {
    queue.set(++ids, cb)
    return ids
  })
  vi.stubGlobal('cancelAnimationFrame', (id: number) => queue.delete(id))
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
    expect(queue.size).toBe(0)
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
    expect(queue.size).toBe(0)
    frame()
    expect(ready.value).toBe(false)
  })
})
