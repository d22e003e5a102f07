export { CollabService, MAX_DOC_BYTES, authorOfSrc, type CollabServiceDeps } from './server.ts';
export { FileDocuments, NOT_FOUND, writerSrc, type Author, type CollabError } from './documents.ts';
export { textDiffOp } from './diff.ts';
export { createPostgresShareDb, queueSubmitsPerDocument } from './db-postgres.ts';
export { createRedisPubSub } from './pubsub-redis.ts';
export {
  COLLAB_TYPE_URI,
  collabTextType,
  registerCollabType,
  type CollabPresence,
  type TextOp,
} from './type.ts';
