/**
 * A variant that breaks an invariant: MSHV's movable-region fault path
 * (seed 001, [PATCH v6 5/5]) with the mmu_interval_read_retry() under
 * region->mutex deleted, as a reviewer might propose to "simplify" it.
 *
 *   mapcheck check ./drop-read-retry.ts     # VIOLATED no-stale-mapping, 20 steps
 *   mapcheck compare ./drop-read-retry.ts   # against v6 and the other proposals
 *
 * The patch is two lines of the fault path: after mutex_lock, go straight
 * to updating region->pages; the retry step is gone.
 */
import { mshvMovable, movableLocks, useRegion, variant } from 'mapcheck'

const REGION_MUTEX = movableLocks.id('region->mutex')

export default variant(mshvMovable, {
  name: 'drop-read-retry',
  description: 'v6 without mmu_interval_read_retry() after mutex_lock(&region->mutex)',
  steps: {
    vp: {
      mutex_lock: movableLocks.lockStep(REGION_MUTEX, (w: any, me: any) => {
        useRegion(w, me.tid)
        return 'pages_update'
      }),
      mmu_interval_read_retry: null,
    },
  },
})
