import type { OutcomeProperty } from '../explorer/model.js'

/**
 * `ioctl-outcome-deterministic`: for one ioctl input, success or failure must
 * not depend on the host's allocation choices (the "flakey" failure of seed
 * 000). A property of the whole exploration: the terminal states' outcomes
 * are collected per input and must agree.
 */
export function ioctlOutcomeDeterministic<W>(input: (w: W) => string, outcome: (w: W) => string): OutcomeProperty<W> {
  return {
    id: 'ioctl-outcome-deterministic',
    description: "one ioctl input gives one result, whatever the host's allocation choices",
    input,
    outcome,
  }
}
