// Cancelling a job is cooperative: the worker stops between runs instead of being terminated inside
// one (which aborts the process when the run is native ONNX Runtime code).
import { describe, expect, it } from 'vitest'
import { JobCancelledError, startWorkerJob, throwIfCancelled } from '../../main/jobs/worker-job'

const entry = { source: './helpers/spin-job-worker.ts', built: [], label: 'spin worker' }

describe('worker jobs', () => {
  it('throwIfCancelled reads the shared flag', () => {
    const cancelFlag = new SharedArrayBuffer(4)
    expect(() => throwIfCancelled({ cancelFlag })).not.toThrow()
    expect(() => throwIfCancelled({})).not.toThrow()
    Atomics.store(new Int32Array(cancelFlag), 0, 1)
    expect(() => throwIfCancelled({ cancelFlag })).toThrow(JobCancelledError)
  })

  it('cancel lets the worker stop on its own between steps, and ends the job as cancelled', async () => {
    const seen: { step: number; stopped: boolean }[] = []
    const job = startWorkerJob<{ step: number; stopped: boolean }, never>(entry, import.meta.url, {}, (p) => seen.push(p))
    while (seen.length < 3) await new Promise((r) => setTimeout(r, 10))
    await job.cancel()
    expect(await job.ended).toEqual({ outcome: 'cancelled' })
    // The worker's finally ran: it exited by itself, not by terminate().
    expect(seen.at(-1)?.stopped).toBe(true)
    expect(seen.filter((p) => p.stopped)).toHaveLength(1)
  }, 60_000)
})
