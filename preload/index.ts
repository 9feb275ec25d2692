// Sandboxed preload: exposes the contract's API as `window.api` and nothing else (no ipcRenderer, no
// Node). main/index.ts hands every call to the handler table's dispatch, which validates the channel
// and the payload, so this side only forwards.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron'
import { IPC_CALL, IPC_PUSH, type FeatureTracerApi } from '../common/ipc-channels'

const api: FeatureTracerApi = {
  call: (channel, payload) => ipcRenderer.invoke(IPC_CALL, channel, payload),
  onPush(event, cb) {
    const listener = (_e: IpcRendererEvent, name: string, payload: unknown) => {
      if (name === event) cb(payload as Parameters<typeof cb>[0])
    }
    ipcRenderer.on(IPC_PUSH, listener)
    return () => {
      ipcRenderer.removeListener(IPC_PUSH, listener)
    }
  },
}

contextBridge.exposeInMainWorld('api', api)
