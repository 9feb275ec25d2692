import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { BundleInfo, BundleProvider } from '../../common/contract'
import { ApiError, call, errorMessage, onPush } from '../api'

export const useBundleStore = defineStore('bundle', () => {
  const info = ref<BundleInfo | null>(null)
  const error = ref<string | null>(null)
  const loading = ref(false)
  /** Why the open bundle's compute process could not start (its provider is then unknown). */
  const providerError = ref<string | null>(null)
  /** The last 'bundle.provider' push per bundle hash: it may arrive before bundle.info's answer. */
  const pushed = new Map<string, BundleProvider>()
  let listening = false

  /** Takes the provider main pushed for the bundle now shown, if any. */
  function applyPushed(): void {
    const p = info.value && pushed.get(info.value.hash)
    if (!p || !info.value) return
    if (p.provider) info.value = { ...info.value, provider: p.provider }
    providerError.value = p.provider ? null : (p.error ?? 'the compute process could not start')
  }

  function listen(): void {
    if (listening) return
    listening = true
    onPush('bundle.provider', (p) => {
      pushed.set(p.hash, p)
      applyPushed()
    })
  }

  function show(next: BundleInfo): void {
    info.value = next
    providerError.value = null
    applyPushed()
  }

  /** Asks main which bundle is open (main opens the last session's or the demo at start). */
  async function refresh(): Promise<void> {
    listen()
    loading.value = true
    try {
      show(await call('bundle.info', {}))
      error.value = null
    } catch (err) {
      info.value = null
      error.value = err instanceof ApiError && err.code === 'no_bundle' ? null : errorMessage(err)
    } finally {
      loading.value = false
    }
  }

  async function open(path: string): Promise<boolean> {
    listen()
    loading.value = true
    try {
      show(await call('bundle.open', { path }))
      error.value = null
      return true
    } catch (err) {
      error.value = errorMessage(err)
      return false
    } finally {
      loading.value = false
    }
  }

  return { info, error, loading, providerError, refresh, open }
})
