/**
 * A fix checked where its code never runs. It reorders region teardown
 * (mshv_partition_destroy_region) to unmap the SLAT before removing the
 * interval notifier, but the VMM thread that destroys the region runs only
 * with `--param destroy=1`: at the defaults the fix "holds" vacuously, and
 * `mapcheck compare` says so (holds?, the patch's steps unreached).
 *
 *   mapcheck compare ./unmap-before-remove.ts                   # holds? vacuously
 *   mapcheck compare ./unmap-before-remove.ts --param destroy=1 # exercised
 */
import { mshvMovable, unmapGpaPages, variant } from 'mapcheck'

export default variant(mshvMovable, {
  name: 'unmap-before-remove',
  description: 'v6, with hv_call_unmap_gpa_pages before mmu_interval_notifier_remove',
  steps: ({ params }) => {
    const pages = params.pages
    return {
      vmm: {
        hlist_del: {
          run(w: any) {
            w.regionState = 2 // REGION_UNLINKED
            return 'hv_call_unmap_gpa_pages'
          },
          text: () => 'mshv_partition_destroy_region: hlist_del(&region->hnode)',
        },
        hv_call_unmap_gpa_pages: {
          run(w: any) {
            unmapGpaPages(w.slat, 0, pages)
            return 'mmu_interval_notifier_remove'
          },
          text: () => `hv_call_unmap_gpa_pages(${pages} pages), before the notifier is removed`,
        },
      },
    }
  },
})
