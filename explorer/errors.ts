/**
 * Bad input from a user: an unknown scenario, variant or parameter, a value
 * out of range, a malformed or foreign trace. The CLI prints its message on
 * one line and exits 2.
 */
export class BadInput extends Error {
  override readonly name = 'BadInput'
}
