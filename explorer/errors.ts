/**
 * Bad input from a user: an unknown scenario, variant or parameter, a value
 * out of range, a malformed or foreign trace. The CLI prints its message on
 * one line and exits 2.
 */
export class BadInput extends Error {
  override readonly name = 'BadInput'
}

/** A scenario that breaks its own declared shape (a value out of its field's range): a bug in the model, not a state. */
export class ModelError extends Error {
  override readonly name = 'ModelError'
}
