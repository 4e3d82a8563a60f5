/**
 * A write broke a unique key (a taken id, email or name), whichever engine
 * raised it. Part of the storage ports' contract, so domain code can tell a
 * conflict from a failure without knowing the adapter.
 */
export class UniqueViolation extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = "UniqueViolation";
  }
}
