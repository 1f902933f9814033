/**
 * mapcheck's public API: what a review file imports. (Being filled in: see issue 10.)
 */
export { BadInput, ModelError } from './explorer/errors.js'
