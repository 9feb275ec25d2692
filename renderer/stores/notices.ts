import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Notice } from '../../common/contract'
import { call, onPush } from '../api'

/**
 * What main had to do with the researcher's files without being asked (a labels file, an autosave or a
 * cache that could not be read, moved aside and renamed): shown as banners, with the new path, until
 * dismissed. Main keeps the list, so notices from before the page connected are shown too.
 */
export const useNoticesStore = defineStore('notices', () => {
  const all = ref<Notice[]>([])
  const dismissed = ref(new Set<string>())
  let listening = false

  const shown = computed(() => all.value.filter((n) => !dismissed.value.has(n.id)))

  function add(n: Notice): void {
    if (!all.value.some((m) => m.id === n.id)) all.value = [...all.value, n]
  }

  async function load(): Promise<void> {
    if (!listening) {
      listening = true
      onPush('workbench.notice', add)
    }
    try {
      for (const n of (await call('workbench.notices', {})).notices) add(n)
    } catch (err) {
      // Notices are extra information; a failure to fetch them must not stop the start.
      console.warn('notices not loaded:', err)
    }
  }

  function dismiss(id: string): void {
    dismissed.value = new Set([...dismissed.value, id])
  }

  return { all, shown, add, load, dismiss }
})
