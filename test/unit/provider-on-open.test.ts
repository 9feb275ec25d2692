// The execution provider from the moment a bundle opens (issue 12 §6): with startComputeOnOpen (the app,
// serve) the compute process starts when the bundle opens, before any trace, and its provider is pushed
// as 'bundle.provider' and answered by bundle.info; a compute process that cannot start is pushed too,
// and the bundle still opens. The page's bundle store takes the push whichever comes first.
import { cpSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { BundleProvider, Events } from '../../common/contract'
import type { HostLauncher } from '../../main/jobs/launcher'
import type { FromHost } from '../../main/jobs/protocol'
import type { Workbench } from '../../main/app/workbench'
import { unwrap } from '../../main/app/dispatch'
import { tempDir, tinyWorkbench } from './helpers/cache'
import { pokeF32 } from './helpers/safetensors-edit'

/** Child processes on a loaded machine can take many seconds to start. */
const SLOW = 120_000

function nextProvider(wb: Workbench): Promise<BundleProvider> {
  return new Promise((resolve) => {
    const off = wb.subscribe((event, payload) => {
      if (event !== 'bundle.provider') return
      off()
      resolve(payload as Events['bundle.provider'])
    })
  })
}

describe('the execution provider when a bundle opens', () => {
  let wb: Workbench | undefined
  afterEach(async () => wb?.close())

  it('starts the compute process with the bundle and names its provider before any trace', async () => {
    wb = tinyWorkbench(tempDir(), { startComputeOnOpen: true })
    const pushed = nextProvider(wb)
    // A fresh cache folder: no build has recorded a provider, so only the compute process can name one.
    const first = unwrap(await wb.invoke('bundle.info', {}))
    expect(first.cache.state).toBe('missing')
    expect(first.provider).toBeNull()
    expect(await pushed).toEqual({ hash: first.hash, provider: 'cpu' })
    expect(unwrap(await wb.invoke('bundle.info', {})).provider).toBe('cpu')
    // The trace that follows uses the process started at open, not a new one.
    const { compute } = await wb.compute()
    expect(compute.starts).toBe(1)
    const r = await wb.dispatch('trace.point', { point: { feature: 0, sample: 0, pos: 1 } })
    expect(r.ok).toBe(true)
    expect(compute.starts).toBe(1)
  }, SLOW)

  it('starts the compute process while main checks the bundle, and ends it when the bundle does not open', async () => {
    // A launcher that records what it starts and what it ends, and never answers (no process is needed).
    const started: { killed: boolean }[] = []
    const recording: HostLauncher = () => {
      const p = { killed: false }
      started.push(p)
      return { pid: undefined, send: () => undefined, onMessage: () => undefined, onExit: () => undefined, kill: () => void (p.killed = true) }
    }
    const dir = tempDir()
    const bundleDir = join(dir, 'nan-bundle')
    cpSync('test/fixtures/tiny', bundleDir, { recursive: true })
    pokeF32(join(bundleDir, 'model.safetensors'), 'embed.W_E', 3, NaN)
    wb = tinyWorkbench(dir, { bundleDir, startComputeOnOpen: true, compute: { launcher: recording } })
    let pushes = 0
    wb.subscribe((event) => void (event === 'bundle.provider' && pushes++))
    const r = await wb.dispatch('bundle.info', {})
    // Main's check refuses the NaN; the compute process it started alongside was ended, and never announced.
    expect(r.ok ? null : r.error.code).toBe('bundle_invalid')
    expect(started).toEqual([{ killed: true }])
    expect(pushes).toBe(0)
  }, SLOW)

  it('pushes why the compute process could not start, and the bundle still opens', async () => {
    const broken: HostLauncher = () => {
      let listener: (m: FromHost) => void = () => undefined
      return {
        pid: undefined,
        send: (m) => {
          if (m.type === 'init') setTimeout(() => listener({ type: 'init-error', error: { code: 'internal', message: 'no ONNX Runtime here' } }), 10)
        },
        onMessage: (l) => void (listener = l),
        onExit: () => undefined,
        kill: () => undefined,
      }
    }
    wb = tinyWorkbench(tempDir(), { startComputeOnOpen: true, compute: { launcher: broken } })
    const pushed = nextProvider(wb)
    const info = unwrap(await wb.invoke('bundle.info', {}))
    expect(info.name).toBeTruthy()
    expect(await pushed).toEqual({ hash: info.hash, provider: null, error: 'no ONNX Runtime here' })
    expect(unwrap(await wb.invoke('bundle.info', {})).provider).toBeNull()
  }, SLOW)
})
