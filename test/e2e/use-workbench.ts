// The hooks every browser e2e file on a fresh workbench repeats, apart from harness.ts, which scripts run
// outside vitest (test/e2e/demo-screenshots.ts) also import.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { OUTPUT, ensureRendererBuilt, startWorkbench, type Workbench } from './harness'

/**
 * An e2e file's workbench, set up by vitest hooks: started (renderer built first) before the file's tests and
 * handed to `started`, a screenshot of each failing test's page (OUTPUT/failed-<prefix>-<test>.png), stopped
 * after them.
 */
export function useWorkbench(prefix: string, started: (wb: Workbench) => void): void {
  let workbench: Workbench | undefined
  beforeAll(async () => {
    mkdirSync(OUTPUT, { recursive: true })
    await ensureRendererBuilt()
    workbench = await startWorkbench()
    started(workbench)
  }, 300_000)
  afterEach(async ({ task }) => {
    if (task.result?.state === 'fail') await workbench?.page.screenshot({ path: join(OUTPUT, `failed-${prefix}-${task.name.replace(/\W+/g, '-')}.png`) }).catch(() => {})
  })
  afterAll(async () => {
    await workbench?.stop()
  })
}
