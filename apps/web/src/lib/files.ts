import type { Schemas, VaporformClient } from '@vaporform/sdk';
import { ApiError, unwrap } from './client.ts';

/** The part of the API the editor needs (`httpFiles` over the generated client). */
export interface FileAccess {
  /** @throws ApiError */
  readFile(projectId: string, path: string): Promise<Schemas['FileContent']>;
  /** Writes a file; with `baseVersion` a stale write is refused. @throws ApiError 409 */
  writeFile(
    projectId: string,
    path: string,
    content: string,
    opts?: { baseVersion?: number; encoding?: 'utf-8' | 'base64' },
  ): Promise<{ file: Schemas['FileMeta'] }>;
  /**
   * Ctrl+S on a co-edited file: the server writes the shared document to the file now.
   * @returns false when another writer is mid-write (the text follows shortly). @throws ApiError
   */
  saveShared(projectId: string, path: string): Promise<boolean>;
}

/** Files load and save over HTTP with the generated client. */
export function httpFiles(client: VaporformClient): FileAccess {
  return {
    async readFile(id, path) {
      return unwrap(
        await client.GET('/api/projects/{id}/files/{path}', { params: { path: { id, path } } }),
      );
    },
    async writeFile(id, path, content, opts = {}) {
      return unwrap(
        await client.PUT('/api/projects/{id}/files/{path}', {
          params: { path: { id, path } },
          body: { content, ...opts },
        }),
      );
    },
    async saveShared(id, path) {
      const r = unwrap(
        await client.POST('/api/projects/{id}/collab/save', {
          params: { path: { id } },
          body: { path },
        }),
      );
      return r.written;
    },
  };
}

/** One stored version of a file with its content (`GET …/history/{path}?version=`). @throws ApiError */
export async function readVersion(
  client: VaporformClient,
  projectId: string,
  path: string,
  version: number,
): Promise<Schemas['FileVersionContent']> {
  const r = unwrap(
    await client.GET('/api/projects/{id}/history/{path}', {
      params: { path: { id: projectId, path }, query: { version } },
    }),
  );
  if (!('content' in r)) throw new ApiError(200, 'unexpected_response', 'no version content');
  return r;
}
