import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { BundleInfo } from '../../common/contract'
import { ApiError, call, errorMessage } from '../api'

export const useBundleStore = defineStore('bundle', () => {
  const info = ref<BundleInfo | null>(null)
  const error = ref<string | null>(null)
  const loading = ref(false)

  /** Asks main which bundle is open (main opens the last session's or the demo at start). */
  async function refresh(): Promise<void> {
    loading.value = true
    try {
      info.value = await call('bundle.info', {})
      error.value = null
    } catch (err) {
      info.value = null
      error.value = err instanceof ApiError && err.code === 'no_bundle' ? null : errorMessage(err)
    } finally {
      loading.value = false
    }
  }

  async function open(path: string): Promise<boolean> {
    loading.value = true
    try {
      info.value = await call('bundle.open', { path })
      error.value = null
      return true
    } catch (err) {
      error.value = errorMessage(err)
      return false
    } finally {
      loading.value = false
    }
  }

  return { info, error, loading, refresh, open }
})
