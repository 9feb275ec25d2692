// A job worker for test/unit/worker-job.test.ts: it reports progress forever, each step a synchronous
// busy stretch (as ONNX Runtime's run() holds its thread), until main cancels. Its `finally` posts a last
// progress, which only a worker that stopped on its own (not one that was terminated) can send.
import { parentPort, workerData } from 'node:worker_threads'
import { JobCancelledError, throwIfCancelled } from '../../../main/jobs/worker-job'

const data = workerData as { jobId: string; cancelFlag?: SharedArrayBuffer }
let step = 0
try {
  for (;;) {
    const until = Date.now() + 20
    while (Date.now() < until) step += 0 // busy, like a native run
    parentPort!.postMessage({ type: 'progress', progress: { step: ++step, stopped: false } })
    throwIfCancelled(data)
    await new Promise((r) => setTimeout(r, 1))
  }
} catch (error) {
  if (!(error instanceof JobCancelledError)) throw error
} finally {
  parentPort!.postMessage({ type: 'progress', progress: { step, stopped: true } })
}
