// Grids that can wait their turn. Creating an ag-grid costs tens of milliseconds of script and forced
// layout, and nothing else on the page moves meanwhile. A view with secondary grids (a trace's four
// vocabulary tables) puts them in <DeferredGrids>: they are created once the page around them has been
// painted, one per frame, so the grid the user waits for (the batch's activation scores, whose answer
// can come at any moment) waits for one of them at most, not for all four (issue 14 §9).
import { inject, onScopeDispose, provide, ref, type InjectionKey, type Ref } from 'vue'
import { afterNextPaint } from '../after-paint'

export interface GridQueue {
  /** A flag that turns true at this grid's turn, in the order the grids asked. */
  turn(): Readonly<Ref<boolean>>
  /** Nothing more is released (the view is gone). */
  dispose(): void
}

/** The first grid after the next painted frame, then one per animation frame. */
export function createGridQueue(): GridQueue {
  const waiting: Ref<boolean>[] = []
  let cancel: (() => void) | null = null
  const release = (): void => {
    cancel = null
    const next = waiting.shift()
    if (next) next.value = true
    if (waiting.length > 0) {
      const id = requestAnimationFrame(release)
      cancel = () => cancelAnimationFrame(id)
    }
  }
  return {
    turn() {
      const r = ref(false)
      waiting.push(r)
      cancel ??= afterNextPaint(release)
      return r
    },
    dispose() {
      cancel?.()
      cancel = null
      waiting.length = 0
    },
  }
}

const KEY: InjectionKey<GridQueue> = Symbol('deferred-grids')

/** Makes the grids below the calling component wait their turns (call it in setup). */
export function provideGridQueue(): void {
  const queue = createGridQueue()
  onScopeDispose(queue.dispose)
  provide(KEY, queue)
}

/** Whether a grid may be created now: at once, unless it is inside <DeferredGrids>. */
export function useGridTurn(): Readonly<Ref<boolean>> {
  const queue = inject(KEY, null)
  return queue ? queue.turn() : ref(true)
}
