import { AppError } from '../../common/errors.ts';
import type { FilesService } from '../files/index.ts';
import type { AiFiles } from './host.ts';

/**
 * The AI's view of the files service: every read and write goes through it (path rules,
 * versions with source `claude`, `file_changed` events).
 */
export function filesHost(files: FilesService): AiFiles {
  return {
    async list(projectId) {
      return (await files.list(projectId)).map((f) => ({ path: f.path, size: f.size }));
    },
    async read(projectId, path) {
      try {
        const f = await files.read(projectId, path);
        return {
          content: f.content,
          encoding: f.encoding,
          version: f.version,
          hash: f.contentHash,
        };
      } catch (err) {
        if (err instanceof AppError && err.code === 'not_found') return undefined;
        throw err;
      }
    },
    async write(projectId, path, content, actor) {
      const outcome = await files.write(projectId, path, content, {
        source: actor.source,
        userId: actor.userId,
      });
      return { version: outcome.version, hash: outcome.file?.contentHash ?? '' };
    },
    async remove(projectId, path, actor) {
      await files.delete(projectId, path, { source: actor.source, userId: actor.userId });
    },
    async apply(projectId, changes, actor) {
      if (changes.length === 0) return;
      await files.applyChangeset(
        projectId,
        changes.map((c) =>
          c.content === null
            ? { op: 'delete' as const, path: c.path, baseVersion: c.baseVersion }
            : {
                op: 'write' as const,
                path: c.path,
                content: c.content,
                baseVersion: c.baseVersion,
              },
        ),
        { source: actor.source, userId: actor.userId },
      );
    },
    async search(projectId, query, limit) {
      const { results } = await files.search(projectId, query, { limit });
      return results.map((r) => ({ path: r.path, line: r.line, preview: r.preview }));
    },
  };
}
