/**
 * A fix checked where its code never runs. On top of `upstream-fixed`, the
 * region's release (mshv_region_destroy) unmaps the SLAT once more right
 * before vfree(), against a fault that raced in after the first unmap. But
 * the VMM thread that destroys the region runs only with `--param destroy=1`:
 * at the defaults the fix "holds" vacuously, and `mapcheck compare` says so
 * (`holds?`, the patch's step unreached).
 *
 *   mapcheck compare ./unmap-again-before-free.ts                    # holds? (vacuously)
 *   mapcheck compare ./unmap-again-before-free.ts --param destroy=1 --param vps=1  # exercised
 */
import { mshvMovable, REGION_FREED, unmapGpaPages, variant } from 'mapcheck'

export default variant(mshvMovable, {
  name: 'unmap-again-before-free',
  description: 'upstream-fixed, with a second hv_call_unmap_gpa_pages of the whole region right before vfree(region)',
  from: 'upstream-fixed',
  steps: ({ params }) => ({
    vmm: {
      vfree: {
        run(w: any) {
          unmapGpaPages(w.slat, 0, params.pages)
          w.regionState = REGION_FREED
          return 'done'
        },
        text: () => `hv_call_unmap_gpa_pages(${params.pages} pages); vfree(region)`,
      },
    },
  }),
})
