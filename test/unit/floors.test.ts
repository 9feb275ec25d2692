// The floors are enforced by lint (eslint.config.js): an upward or sideways import fails, an import from
// below passes. Linted as text at the path it would have, so no violating file ever exists in the tree.
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

const eslint = new ESLint({ cwd: process.cwd() })

async function importErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('lint enforces the floors', () => {
  it.each([
    ['a domain importing the app', 'main/cache/x.ts', "import { Workbench } from '../app/workbench'\nexport const w = Workbench\n"],
    ['a domain importing a transport', 'main/session/x.ts', "import { startServer } from '../transports/serve/server'\nexport const s = startServer\n"],
    ['a lower domain importing a higher one', 'main/bundle/x.ts', "import { CacheReader } from '../cache/query'\nexport const c = CacheReader\n"],
    ['the science importing the cache', 'main/trace/x.ts', "import { topK } from '../cache/stats'\nexport const t = topK\n"],
    ['the page importing main', 'renderer/views/x.ts', "import { dot } from '../../main/trace/math'\nexport const d = dot\n"],
    ['the preload importing main', 'preload/x.ts', "import { FtError } from '../main/app/dispatch'\nexport const e = FtError\n"],
    ['the leaf importing main', 'common/x.ts', "import { loadBundle } from '../main/bundle'\nexport const l = loadBundle\n"],
    ['the leaf importing Node', 'common/x.ts', "import { readFileSync } from 'node:fs'\nexport const r = readFileSync\n"],
  ])('fails on %s', async (_what, path, code) => {
    expect(await importErrors(path, code)).toHaveLength(1)
  })

  it.each([
    ['a domain importing a lower one and the leaf', 'main/cache/x.ts', "import { loadBundle } from '../bundle'\nimport { FtError } from '../../common/errors'\nexport const a = [loadBundle, FtError]\n"],
    ['the app importing domains', 'main/app/x.ts', "import { CacheReader } from '../cache/query'\nexport const c = CacheReader\n"],
    ['a transport importing the app', 'main/transports/serve/x.ts', "import { createWorkbench } from '../../app/workbench'\nexport const c = createWorkbench\n"],
    ['the page importing the contract', 'renderer/views/x.ts', "import { channels } from '../../common/contract'\nexport const c = channels\n"],
    ['a domain importing a contract file named like a floor', 'main/bundle/x.ts', "import type { CacheState } from '../../common/contract/cache'\nexport type C = CacheState\n"],
  ])('passes %s', async (_what, path, code) => {
    expect(await importErrors(path, code)).toEqual([])
  })
})
