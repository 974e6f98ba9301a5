/**
 * What every helper shares: the part of a tap test a helper needs to clean up after itself.
 */

/** A tap test (or anything else) that runs `fn` when it ends. */
export interface Teardown { teardown (fn: () => unknown): void }
