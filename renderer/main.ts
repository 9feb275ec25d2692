import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { installHost } from './api'
import { detectHost, type BrowserHostDeps } from './api/host'
import './styles.css'

installHost(detectHost(window, { fetch: (input, init) => window.fetch(input, init), EventSource: window.EventSource as unknown as BrowserHostDeps['EventSource'] }))

createApp(App).use(createPinia()).mount('#app')
