/**
 * Eraser's lockset algorithm (Savage et al., 1997) for one shared object a
 * scenario marks (e.g. the partition's region list): every access intersects
 * the object's candidate lockset with the locks the thread holds. An object
 * touched by one thread only stays Exclusive; read by several, Shared (no
 * race while only reads happen); once written by a second thread it is
 * Shared-Modified, and an empty candidate set there is a race.
 */
import { struct, threadRef, u8 } from '../schema.js'
import type { LockHolder } from './locks.js'

export const ERASER_VIRGIN = 0
export const ERASER_EXCLUSIVE = 1
export const ERASER_SHARED = 2
export const ERASER_SHARED_MODIFIED = 3

export const lockset = () => struct({ state: u8(ERASER_SHARED_MODIFIED), owner: threadRef(), candidates: u8(), race: threadRef() })

export interface Lockset {
  state: number
  owner: number
  candidates: number
  /** Ghost: tid + 1 of the thread whose access left a Shared-Modified object with no common lock. */
  race: number
}

/** An access to the object by `me`, holding `me.held`. */
export function access(o: Lockset, me: LockHolder, write: boolean): void {
  switch (o.state) {
    case ERASER_VIRGIN:
      o.state = ERASER_EXCLUSIVE
      o.owner = me.tid + 1
      return
    case ERASER_EXCLUSIVE:
      if (o.owner === me.tid + 1) return
      o.state = write ? ERASER_SHARED_MODIFIED : ERASER_SHARED
      o.candidates = me.held
      break
    case ERASER_SHARED:
      o.candidates &= me.held
      if (write) o.state = ERASER_SHARED_MODIFIED
      break
    default:
      o.candidates &= me.held
  }
  if (o.state === ERASER_SHARED_MODIFIED && o.candidates === 0 && o.race === 0) o.race = me.tid + 1
}
