/// <reference types="vite/client" />
import type { FeatureTracerApi } from '../common/ipc-channels'

declare global {
  interface Window {
    /** Present in the Electron window (the preload); absent in a browser, where renderer/api uses HTTP. */
    api?: FeatureTracerApi
  }
}

export {}
