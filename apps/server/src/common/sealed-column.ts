/**
 * A column of sealed values somewhere in the database. Shared below the services: the secrets
 * service registers its own and rotates them all;
 * another service that seals values (e.g. auth's MFA secrets) registers one for its table, so
 * rotation re-seals them too and never retires a key they still use.
 */
export interface SealedColumn {
  /** e.g. `project_env_vars.value_encrypted`. */
  name: string;
  /**
   * Up to `limit` values not sealed with `keyId`, in a stable row order after `after` (a cursor
   * this method returned), each with the context it was sealed with.
   */
  stale(
    keyId: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ cursor: string; sealed: string; context: string }[]>;
  /** Replaces one value only if it still is `expected` (compare-and-set); false otherwise. */
  replace(cursor: string, expected: string, next: string): Promise<boolean>;
  /** How many values each key id sealed. */
  countByKey(): Promise<Record<string, number>>;
}
