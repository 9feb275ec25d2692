// Every test process runs confined: the user cache and config folders (activation caches, bundle hash
// cache, labels, autosaves) point into a fresh temp folder, so no test reads or writes the real ones,
// even as root in CI. Child processes that tests start inherit it.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

if (!process.env.FT_TEST_CONFINED) {
  const root = mkdtempSync(join(tmpdir(), 'ft-confined-'))
  process.env.XDG_CACHE_HOME = join(root, 'cache')
  process.env.XDG_CONFIG_HOME = join(root, 'config')
  process.env.FT_TEST_CONFINED = root
}
