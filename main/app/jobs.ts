// The job slots: every long job (the cache build, whole-corpus scores) the same way. A job runs in a host
// process of its own (compute-host.ts), has the id the page chose, pushes 'job.progress' with its kind and
// id, and ends exactly once (done, cancelled, failed) for the Workbench to report as 'job.done'. Cancel
// ends its process (safe at any moment: what a build committed stays). One job of each kind at a time.
import type { AtlasJson, ExecutionProviderName, IpcError, JobKind, JobProgress, CorpusScoresJson } from '../../common/contract'
import { FtError, toIpcError } from '../../common/errors'
import { nodeLauncher, type HostLauncher } from '../jobs/launcher'
import { HostStoppedError, ProcessHost } from '../jobs/process-host'
import type { BuildJobData } from '../cache/job'
import type { CorpusScoresJobData } from '../trace/corpus-scores-job'
import type { AtlasJobData } from '../trace/atlas-job'
import { hostEntry } from './compute'

/** What each kind of job takes and gives. */
export interface JobTypes {
  'cache.build': { data: BuildJobData; value: { provider: ExecutionProviderName } }
  'trace.corpusScores': { data: CorpusScoresJobData; value: CorpusScoresJson }
  'trace.atlas': { data: AtlasJobData; value: AtlasJson }
}

export type JobEnd<K extends JobKind> = { outcome: 'done'; value: JobTypes[K]['value'] } | { outcome: 'cancelled' } | { outcome: 'failed'; error: IpcError }

export interface Job<K extends JobKind = JobKind> {
  readonly kind: K
  readonly id: string
  /** The last progress the job reported. */
  readonly progress: JobProgress | null
  /** Settles once the job's process has ended (never rejects). */
  readonly ended: Promise<JobEnd<K>>
  /** The job's process id, once it has one (tests end it to play a crash). */
  readonly pid: number | undefined
}

const NAMES: Record<JobKind, { process: string; again: string }> = {
  'cache.build': { process: 'the cache build process', again: 'build again to resume from the last committed chunk' },
  'trace.corpusScores': { process: 'the corpus-scores process', again: 'start it again' },
  'trace.atlas': { process: 'the atlas process', again: 'start it again' },
}

interface Slot {
  job: Job
  /** Ends the job's process; its `ended` then says 'cancelled'. */
  cancel(): void
}

export class JobSlots {
  private readonly slots = new Map<JobKind, Slot>()

  constructor(
    private readonly onProgress: (p: JobProgress) => void,
    private readonly launcher: HostLauncher = nodeLauncher,
  ) {}

  /** Starts job `id` of `kind`; `busy` while another of the kind runs or the id is taken. */
  start<K extends JobKind>(kind: K, id: string, data: JobTypes[K]['data']): Job<K> {
    const other = this.slots.get(kind)
    if (other) throw new FtError('busy', `${{ 'cache.build': 'a cache build', 'trace.corpusScores': 'a corpus-scores job', 'trace.atlas': 'an atlas' }[kind]} is already running (job ${other.job.id}); cancel it or wait`)
    if (this.byId(id)) throw new FtError('busy', `job ${id} is already running`)
    const host = new ProcessHost({ launcher: this.launcher, entry: hostEntry(), kind, data, name: NAMES[kind].process, restart: false })
    let progress: JobProgress | null = null
    let cancelled = false
    const ended = host
      .request('run', null, {
        onProgress: (p) => {
          progress = { phase: 'compute', ...(p as Omit<JobProgress, 'kind' | 'phase'>), kind, jobId: id }
          this.onProgress(progress)
        },
      })
      .then(
        (value): JobEnd<K> => ({ outcome: 'done', value: value as JobTypes[K]['value'] }),
        (e: unknown): JobEnd<K> => {
          if (cancelled) return { outcome: 'cancelled' }
          const error = toIpcError(e)
          return { outcome: 'failed', error: e instanceof HostStoppedError ? { ...error, message: `${error.message}; ${NAMES[kind].again}` } : error }
        },
      )
      .then((end) => {
        host.dispose()
        if (this.slots.get(kind)?.job === job) this.slots.delete(kind)
        return end
      })
    const job: Job<K> = {
      kind,
      id,
      get progress() {
        return progress
      },
      ended,
      get pid() {
        return host.pid
      },
    }
    const cancel = (): void => {
      cancelled = true
      host.dispose('the job was cancelled')
    }
    this.slots.set(kind, { job, cancel })
    return job
  }

  /** The running job of `kind`, if any. */
  running<K extends JobKind>(kind: K): Job<K> | null {
    return (this.slots.get(kind)?.job as Job<K> | undefined) ?? null
  }

  byId(id: string): Job | null {
    for (const s of this.slots.values()) if (s.job.id === id) return s.job
    return null
  }

  /** Ends job `id`'s process; resolves once the job has ended. False when no job has this id. */
  async cancel(id: string): Promise<boolean> {
    for (const slot of this.slots.values()) {
      if (slot.job.id !== id) continue
      slot.cancel()
      await slot.job.ended
      return true
    }
    return false
  }

  /** Cancels every job and waits for each to end. */
  async cancelAll(): Promise<void> {
    await Promise.all([...this.slots.values()].map((s) => this.cancel(s.job.id)))
  }
}
