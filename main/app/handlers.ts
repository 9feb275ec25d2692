// The handler table: one function per contract channel, each receiving its validated request. Typed
// as HandlerTable, so a channel added to the contract without a handler (or with the wrong response)
// fails the type check.
import type { BundleInfo, TokenMatch } from '../../common/contract'
import type { HandlerTable } from './dispatch'
import { FtError } from '../../common/errors'
import { createDialogHandlers } from './dialog'
import { createTraceHandlers } from './trace-handlers'
import { createAtlasHandlers } from './atlas-handlers'
import type { OpenBundle, Workbench } from './workbench'
import { servingReader } from './serving'
import { homedir } from 'node:os'
import { isAbsolute } from 'node:path'
import { pathText } from '../../common/text'
import { checkSessionSavePath, readAutosave, readSessionFile, writeAutosave, writeSessionFile, SESSION_FORMAT, SESSION_VERSION } from '../session/file'
import type { SessionFile } from '../../common/contract'
import { checkFeatureId } from '../bundle/feature-id'
import type { BosChoice } from '../cache/bos'

async function bundleInfo(wb: Workbench, open: OpenBundle): Promise<BundleInfo> {
  const { bundle } = open
  const c = bundle.config
  return {
    path: bundle.dir,
    hash: bundle.hashes.bundle,
    name: c.name,
    model: c.model,
    sae: c.sae,
    dataset: c.dataset,
    quality: c.quality,
    provider: await wb.provider(),
    cache: await wb.cacheState(),
  }
}

/** A request's includeBos as the cache reader's choice (main/cache/bos.ts). */
function bosChoice(includeBos: boolean): BosChoice {
  return includeBos ? 'included' : 'excluded'
}

function checkFeature(open: OpenBundle, id: number): void {
  checkFeatureId(id, open.bundle.config.sae.d_sae)
}

/** Token ids a search text stands for: the tokenizer's ids, without the BOS it prepends to prompts. */
function tokenIdsOf(open: OpenBundle, text: string): number[] {
  const ids = open.bundle.tokenizer.encode(text)
  const ds = open.bundle.config.dataset
  if (ds.prepend_bos && ids.length > 1 && ids[0] === (ds.bos_token_id ?? 0)) ids.shift()
  return ids
}

export function createHandlers(wb: Workbench): HandlerTable {
  const annotate = (open: OpenBundle) => {
    const all = wb.labels.all(open.bundle.hashes.bundle)
    return (id: number) => all.get(id) ?? { label: '', notes: '' }
  }
  const sessionOf = async (state: Parameters<HandlerTable['session.save']>[0]['state']) => {
    const open = await wb.bundle()
    const labels: Record<string, { label: string; notes: string }> = {}
    for (const [id, a] of wb.labels.all(open.bundle.hashes.bundle)) labels[String(id)] = a
    return {
      format: SESSION_FORMAT,
      version: SESSION_VERSION,
      savedAt: new Date().toISOString(),
      bundle: { path: open.bundle.dir, hash: open.bundle.hashes.bundle },
      state,
      labels,
    } as const
  }

  /** Copies a session's labels into the store when it belongs to the open bundle (checked against its d_sae). */
  const importLabels = async (session: SessionFile) => {
    const open = await wb.bundle()
    if (session.bundle.hash !== open.bundle.hashes.bundle) return { labelsImported: 0, labelsSkipped: 0 }
    const r = await wb.labels.importMissing(session.bundle.hash, session.labels, open.bundle.config.sae.d_sae)
    return { labelsImported: r.copied, labelsSkipped: r.skipped }
  }

  return {
    'workbench.notices': () => ({ notices: wb.notices }),
    'bundle.info': async () => bundleInfo(wb, await wb.bundle()),
    'bundle.open': async ({ path }) => {
      if (!isAbsolute(path)) throw new FtError('invalid_request', `bundle path ${pathText(path)} is relative; give the folder's full path`)
      return bundleInfo(wb, await wb.open(path))
    },

    'cache.status': () => wb.cacheState(),
    'cache.build': async ({ jobId, rebuild, full }) => wb.startBuild(jobId, rebuild, full),
    'job.cancel': async ({ jobId }) => ({ cancelled: await wb.jobs.cancel(jobId) }),

    'features.list': async ({ includeBos }) => {
      const open = await wb.bundle()
      return servingReader(open).list(annotate(open), bosChoice(includeBos))
    },
    'feature.get': async ({ id, topK, includeBos }) => {
      const open = await wb.bundle()
      checkFeature(open, id)
      const reader = servingReader(open)
      const read = () => reader.detail(id, topK, (f) => wb.labels.get(open.bundle.hashes.bundle, f), bosChoice(includeBos))
      const detail = read()
      if (detail.logits.top.length > 0) return detail
      // Until the build stores them (its partial summary, or its logit step still running), the logit
      // effects come from the weights, which only the compute process holds.
      if (reader.logitsPending()) detail.logits = await wb.featureLogits(id)
      // Or the logit step committed between the two reads: the row holds them now (none for a hook without
      // a linear path to the logits).
      else detail.logits = read().logits
      return detail
    },
    'feature.histogram': async ({ id, bins, scale, includeBos }) => {
      const open = await wb.bundle()
      checkFeature(open, id)
      return servingReader(open).histogram(id, bins, scale, bosChoice(includeBos))
    },
    'features.byToken': async (req) => {
      const open = await wb.bundle()
      const ids = 'tokenId' in req ? [req.tokenId] : tokenIdsOf(open, req.text)
      const vocab = open.view.display.length
      for (const t of ids) if (t >= vocab) throw new FtError('not_found', `token id ${t} is outside the vocabulary (0…${vocab - 1})`)
      const tokens: TokenMatch[] = [...new Set(ids)].map((id) => ({ id, token: open.view.display[id], occurrences: open.occurrences[id] }))
      const occurrences = tokens.reduce((n, t) => n + t.occurrences, 0)
      return { tokens, ...servingReader(open).byToken(ids, occurrences, req.limit, annotate(open)) }
    },

    'labels.set': async ({ id, label }) => {
      const open = await wb.bundle()
      checkFeature(open, id)
      wb.labels.setLabel(open.bundle.hashes.bundle, id, label)
      return { id, label }
    },
    'notes.set': async ({ id, notes }) => {
      const open = await wb.bundle()
      checkFeature(open, id)
      wb.labels.setNotes(open.bundle.hashes.bundle, id, notes)
      return { id, notes }
    },

    'session.save': async ({ path, state }) => {
      checkSessionSavePath(path, wb.options.userDataDir)
      const session = await sessionOf(state)
      writeSessionFile(path, session)
      return { path, savedAt: session.savedAt }
    },
    'session.autosave': async ({ state }) => {
      const slot = await wb.autosavePath()
      const session = await sessionOf(state)
      // Whatever cannot be read in the slot is moved aside before the write (never replaced).
      const movedAside = writeAutosave(slot, session)
      if (movedAside) wb.notice('The autosaved session could not be read; it was moved aside before autosaving.', movedAside)
      return { path: slot, savedAt: session.savedAt, movedAside }
    },
    'session.autosaved': async () => {
      const slot = await wb.autosavePath()
      const open = await wb.bundle()
      const { session, movedAside } = readAutosave(slot, open.bundle.hashes.bundle)
      if (movedAside) wb.notice('The autosaved session could not be read; it was moved aside.', movedAside)
      const loaded = session ? { path: slot, session, ...(await importLabels(session)) } : null
      return { loaded, movedAside, defaultDir: homedir() }
    },
    'session.load': async ({ path }) => {
      if (!isAbsolute(path)) throw new FtError('invalid_request', `session path ${pathText(path)} is relative; give the full path`)
      const session = readSessionFile(path)
      return { path, session, ...(await importLabels(session)) }
    },

    ...createTraceHandlers(wb),
    ...createAtlasHandlers(wb),
    ...createDialogHandlers(wb.options.dialog),
  }
}
