// The page's bundle store (renderer/stores/bundle.ts) and main's 'bundle.provider' push: the provider
// shows whether the push comes after bundle.info's answer or before it, only for the bundle it names,
// and a compute process that could not start leaves the reason.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import type { BundleInfo, BundleProvider } from '../../common/contract'

const api = vi.hoisted(() => ({
  listeners: new Map<string, (payload: unknown) => void>(),
  info: null as unknown,
}))
vi.mock('../../renderer/api', () => ({
  call: vi.fn(async () => api.info),
  onPush: vi.fn((event: string, cb: (payload: unknown) => void) => {
    api.listeners.set(event, cb)
    return () => api.listeners.delete(event)
  }),
  errorMessage: (e: unknown) => String((e as Error).message ?? e),
  ApiError: class extends Error {},
}))
const { useBundleStore } = await import('../../renderer/stores/bundle')

const info = (hash: string, provider: BundleInfo['provider']): BundleInfo => ({ hash, name: hash, provider }) as BundleInfo
const push = (p: BundleProvider) => api.listeners.get('bundle.provider')!(p)

describe('useBundleStore and the provider push', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    api.listeners.clear()
  })

  it('takes the provider pushed after bundle.info answered, for that bundle only', async () => {
    api.info = info('a', null)
    const store = useBundleStore()
    await store.refresh()
    expect(store.info?.provider).toBeNull()
    push({ hash: 'other', provider: 'cuda' })
    expect(store.info?.provider).toBeNull()
    push({ hash: 'a', provider: 'cpu' })
    expect(store.info?.provider).toBe('cpu')
    expect(store.providerError).toBeNull()
  })

  it('keeps a push that came before the answer', async () => {
    api.info = info('b', null)
    const store = useBundleStore()
    const pending = store.open('/x')
    push({ hash: 'b', provider: 'cuda' })
    expect(await pending).toBe(true)
    expect(store.info?.provider).toBe('cuda')
  })

  it('keeps why the compute process could not start', async () => {
    api.info = info('c', null)
    const store = useBundleStore()
    await store.refresh()
    push({ hash: 'c', provider: null, error: 'no ONNX Runtime here' })
    expect(store.info?.provider).toBeNull()
    expect(store.providerError).toBe('no ONNX Runtime here')
  })
})
