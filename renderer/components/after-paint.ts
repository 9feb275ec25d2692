// What a click must show at once goes to the screen before what is slow to build. Each ag-grid's creation
// reads sizes from the DOM, which forces the browser to lay out everything added before it; mounted in the
// same task as a trace's header, a tab's grids held the header off the screen for 200–400 ms (issue 14 §9).
import { onScopeDispose, ref, watch, type Ref, type WatchSource } from 'vue'

/**
 * Calls `cb` in the frame after the next one, so the next frame paints the DOM as it is now first.
 * Returns a cancel function. (One animation frame is not enough: its callbacks run before that frame's paint.)
 */
export function afterNextPaint(cb: () => void): () => void {
  let inner = 0
  const outer = requestAnimationFrame(() => {
    inner = requestAnimationFrame(cb)
  })
  return () => {
    cancelAnimationFrame(outer)
    cancelAnimationFrame(inner)
  }
}

/**
 * A flag for a component's slow part: false until `source` is first truthy and a frame with what it
 * shows has been painted, then true for good (a re-run that keeps the view does not hide it again).
 * Call it in a component's setup (or an effect scope): it is cancelled with it.
 */
export function usePaintedAfter(source: WatchSource<unknown>): Readonly<Ref<boolean>> {
  const ready = ref(false)
  let cancel: (() => void) | null = null
  const stop = watch(
    source,
    (v) => {
      if (!v || ready.value || cancel) return
      cancel = afterNextPaint(() => {
        cancel = null
        ready.value = true
        stop()
      })
    },
    { immediate: true, flush: 'post' },
  )
  // A component unmounted before its frame came: nothing is left waiting.
  onScopeDispose(() => {
    cancel?.()
    stop()
  })
  return ready
}
