export { createDb } from './pool.ts';
export type { Db } from './pool.ts';
export { MIGRATION_LOCK_KEY, migrate, readMigrations } from './migrator.ts';
export { startEmbeddedPostgres, freePort } from './embedded.ts';
export type { EmbeddedDatabase } from './embedded.ts';
export { databaseUnavailable, isDatabaseUnreachable } from './connection-errors.ts';
