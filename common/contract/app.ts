// What the app tells the researcher without being asked: files it moved aside rather than overwrite.
import { channel, empty } from './channel'

/** A file the app could not read and renamed, rather than overwrite: where it was, where it is now, why. */
export interface MovedAside {
  from: string
  to: string
  reason: string
}

/** Something the researcher must be told even though no request failed (shown as a banner until dismissed). */
export interface Notice {
  id: string
  /** ISO time. */
  at: string
  message: string
  movedAside?: MovedAside
}

export const appChannels = {
  /** What the researcher must be told since the app started (files moved aside, …); also pushed as 'workbench.notice'. */
  'workbench.notices': channel<{ notices: Notice[] }>()(empty),
}
