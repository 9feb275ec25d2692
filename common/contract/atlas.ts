// The mechanism atlas of a feature (issue 15 §1): the feature linearized at many firings (its top N from the
// cache's top list, plus a sample of its quantile groups), the cosines of those directions, their
// hierarchical clustering (average linkage on 1 − cosine of u), per tree node (every cluster any threshold
// can give) the mean direction's W_E tokens and the decomposition aggregated over its members, and the
// cross-fidelity of each point's first-order prediction at every other point. A job (jobs.ts): start it
// here, follow job.progress / job.done, cancel it with job.cancel; the last result can be fetched again.
import { z } from 'zod'
import { jobId } from './jobs'
import { channel, featureId } from './channel'
import type { ActivationRow } from './features'
import type { TokenScoreJson } from './trace'

/** Where a point of the atlas came from: the feature's top firings, or a quantile group's examples. */
export type AtlasPointSource = 'top' | 'quantile'

/**
 * A point of the atlas as a row of the feature grids (batch = the corpus sample, pos, str_tokens, context,
 * activation recomputed at the point), with where it came from and its pre-activation.
 */
export interface AtlasPointJson extends ActivationRow {
  source: AtlasPointSource
  preActivation: number
}

/** One row of an aggregated decomposition: the mean of u's term over a node's members. */
export interface AtlasTermJson {
  layer: number
  head: number
  /** Relative source offset t − s (by offset), or the source token (by token). */
  offset?: number
  tokenId?: number
  str_tokens?: string
  mean: number
}

/** The notebook's direct attribution of u·R: resid_pre (W_E + W_pos; W_E alone in a rotary model), each attention layer (with b_O), each MLP. */
export interface AtlasAttributionJson {
  component: string
  mean: number
  /** The mean of the component's share of each member's u·R. */
  meanShare: number
}

/** A node of the clustering tree: a leaf (one point) or a merge; every cluster a threshold can give is one. */
export interface AtlasNodeJson {
  id: number
  members: number[]
  /** 1 − cosine at which the node formed (0 for a leaf). */
  height: number
  meanActivation: number
  /** W_E · mean(u) over the members: its highest and lowest tokens. */
  tokens: { top: TokenScoreJson[]; bottom: TokenScoreJson[] }
  /** u's attention terms (pattern · hook_v · W_O · u) averaged over the members, largest |mean| first. */
  byOffset: AtlasTermJson[]
  byToken: AtlasTermJson[]
  attribution: AtlasAttributionJson[]
}

export interface AtlasJson {
  jobId: string
  feature: number
  hookPoint: string
  /** The residual point R the directions live at. */
  resid: string
  points: AtlasPointJson[]
  cosineU: number[][]
  cosineV: number[][]
  /** Average-linkage merges on 1 − cosineU, as scipy's linkage: [a, b, height, size]; node n + k is merge k. */
  linkage: [number, number, number, number][]
  /** The leaves in the tree's order (the heatmap's rows and columns). */
  order: number[]
  /** Every tree node: 0…n−1 the points, n + k merge k. */
  nodes: AtlasNodeJson[]
  /** pre_i + u_i·(R_j − R_i): point i's first-order prediction of the pre-activation at point j. */
  crossPredicted: number[][]
  /** |crossPredicted[i][j] − pre_j| / |pre_j| (|pre_j| floored at 1e-12): the relative error, 0 is exact. */
  crossFidelity: number[][]
  /** Per point i: the share of points j its direction predicts to within `tolerance`. */
  explainedShare: number[]
  /** The best single direction: its point, and the share of points it explains. */
  bestPoint: number
  bestShare: number
  tolerance: number
  elapsedSec: number
}

export const atlasRequest = z.strictObject({
  jobId,
  feature: featureId,
  /** The feature's top firings to linearize at (the cache keeps 100). */
  top: z.number().int().min(0).max(100).default(64),
  /**
   * Firings sampled across its quantile groups: the groups' examples taken round-robin from the lowest group
   * up, skipping points already in the top list. The cache keeps 3 examples in each of 10 groups, so at
   * most 30 exist; asking 32 (the default) takes them all. A cache without quantile groups (built
   * before them) is sampled across its equal-width intervals' examples (5 × 10) instead.
   */
  quantileSamples: z.number().int().min(0).max(100).default(32),
  /** Rows of each node's token and term tables. */
  topK: z.number().int().min(1).max(200).default(12),
})

export const atlasChannels = {
  /** Starts the atlas of a feature as job `jobId` (one at a time). Progress and result: job.progress / job.done. */
  'trace.atlas': channel<{ jobId: string }>()(atlasRequest),
  /** The last finished atlas again; `not_found` for any other id. */
  'trace.atlas.result': channel<AtlasJson>()(z.strictObject({ jobId: z.string().min(1) })),
}
