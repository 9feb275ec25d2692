// One ONNX run at a time, in lane order. onnxruntime-node's run() holds the JavaScript thread, so a
// process runs one at a time anyway; the gate decides who goes next when several requests wait between
// their runs: a 'point' request (a click's trace, a prompt) keeps every 'scope' run (a batch's forward
// pass, cut into runs of a few thousand tokens) waiting from its start to its end, its JavaScript between
// runs included, so a click waits at most for the one run in progress. It is also where a cancelled
// request stops: a request whose signal has fired gets no further run.
export type Lane = 'point' | 'scope'

/** What a request tells the engine about itself. */
export interface RunContext {
  /** Aborting stops the request before its next run (the run in progress finishes). */
  signal?: AbortSignal
  /** Default 'point'. */
  lane?: Lane
}

export class RunCancelledError extends Error {
  override readonly name = 'RunCancelledError'
  constructor() {
    super('the request was cancelled')
  }
}

interface Waiter {
  lane: Lane
  go(): void
}

export class RunGate {
  private busy = false
  private readonly waiting: Waiter[] = []
  /** Point requests under way (see request()). */
  private points = 0

  /** Runs a whole request of `lane`: while a point request is under way, no scope run starts. */
  async request<T>(lane: Lane, work: () => Promise<T>): Promise<T> {
    if (lane !== 'point') return work()
    this.points++
    try {
      return await work()
    } finally {
      this.points--
      this.wake()
    }
  }

  /** Runs `run` when the gate is free and no waiter of a better lane is ahead. */
  async through<T>(ctx: RunContext, run: () => Promise<T>): Promise<T> {
    await this.enter(ctx)
    try {
      return await run()
    } finally {
      this.leave()
    }
  }

  private enter({ signal, lane = 'point' }: RunContext): Promise<void> {
    if (signal?.aborted) return Promise.reject(new RunCancelledError())
    if (!this.busy && (lane === 'point' || this.points === 0)) {
      this.busy = true
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(waiter)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(new RunCancelledError())
      }
      const waiter: Waiter = {
        lane,
        go: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      // Point runs queue ahead of every scope run; each lane is first come, first served.
      const at = lane === 'point' ? this.waiting.findIndex((w) => w.lane === 'scope') : -1
      if (at < 0) this.waiting.push(waiter)
      else this.waiting.splice(at, 0, waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private leave(): void {
    this.busy = false
    this.wake()
  }

  /** Hands the free gate to the first waiter allowed to run now (scope runs only with no point request). */
  private wake(): void {
    if (this.busy) return
    const i = this.points > 0 ? this.waiting.findIndex((w) => w.lane === 'point') : this.waiting.length > 0 ? 0 : -1
    if (i < 0) return
    const [next] = this.waiting.splice(i, 1)
    this.busy = true
    next.go()
  }
}
