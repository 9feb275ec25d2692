// Entry point of the compute worker thread: loads the bundle, builds the engine, answers requests.
// Loaded as TypeScript under tsx/vitest and as compute-worker.js in the electron-vite build.
import { parentPort, workerData } from 'node:worker_threads'
import { loadBundle } from '../bundle'
import { OrtEngine } from './ort-engine'
import { toWireError, transferList, type WorkerInit, type WorkerReply, type WorkerRequest } from './protocol'

const port = parentPort
if (!port) throw new Error('main/compute/worker.ts must run in a worker thread')
const init = workerData as WorkerInit
function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  try {
    port!.postMessage(msg, transfer)
  } catch {
    // A buffer ORT still owns cannot be detached; copying it is slower but still correct.
    port!.postMessage(msg)
  }
}

async function handle(engine: OrtEngine, req: WorkerRequest): Promise<void> {
  try {
    switch (req.op) {
      case 'saeActs': {
        const value = await engine.saeActs(req.tokens, req.nSeq, req.seqLen)
        return reply({ type: 'result', id: req.id, value }, transferList(value))
      }
      case 'forward': {
        const value = await engine.forward(req.tokens, req.nSeq, req.seqLen, req.outputs)
        return reply({ type: 'result', id: req.id, value }, transferList(value))
      }
      case 'vocabProducts': {
        const value = await engine.vocabProducts(req.req)
        return reply({ type: 'result', id: req.id, value }, transferList(value))
      }
      case 'projectBlock': {
        const value = await engine.projectBlock(req.req)
        return reply({ type: 'result', id: req.id, value }, transferList(value))
      }
      case 'crash':
        if (req.how === 'exit') process.exit(70)
        setImmediate(() => {
          throw new Error('deliberate crash (supervision test)')
        })
        return
      case 'block':
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, req.ms)
        return reply({ type: 'result', id: req.id, value: null })
    }
  } catch (e) {
    reply({ type: 'error', id: req.id, error: toWireError(e) })
  }
}

try {
  const bundle = await loadBundle(init.bundleDir)
  const engine = await OrtEngine.create(bundle, init.engine)
  port.on('message', (req: WorkerRequest) => void handle(engine, req))
  reply({ type: 'ready', provider: engine.provider, skipped: engine.skippedProviders })
} catch (e) {
  reply({ type: 'init-error', error: toWireError(e) })
}
