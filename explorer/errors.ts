/**
 * Bad input from a user: an unknown scenario, variant or parameter, a value
 * out of range, a malformed or foreign trace. The CLI prints its message on
 * one line and exits 2.
 */
export class BadInput extends Error {
  override readonly name = 'BadInput'
}

/** A step of the trace to where a model error happened. */
export interface ErrorStep {
  readonly thread: string
  readonly label: string
  readonly choice: number
  readonly text: string
}

/**
 * A bug in a model, not a state of it: a step that throws, a goto to an
 * undeclared label, a malformed scenario. When it happens during a search,
 * `trace` is the path to the state the step was taken in.
 */
export class ModelError extends Error {
  override readonly name = 'ModelError'
  constructor(
    message: string,
    readonly trace?: { readonly init: number; readonly steps: readonly ErrorStep[] },
  ) {
    super(message)
  }
}

/**
 * True for a `BadInput` (or `ModelError`) from any copy of this module: a
 * review file may load the public API as a second module instance.
 */
export const isBadInput = (e: unknown): e is BadInput => e instanceof Error && e.name === 'BadInput'
export const isModelError = (e: unknown): e is ModelError => e instanceof Error && e.name === 'ModelError'
