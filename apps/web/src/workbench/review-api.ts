import type { Schemas, VaporformClient } from '@vaporform/sdk';
import { unwrap } from '../lib/client.ts';

/** An assistant turn's changes as a review: files, hunks and their states. */
export type Changeset = Schemas['Changeset'];
export type ChangesetFile = Changeset['files'][number];
export type ChangesetHunk = Schemas['ChangesetHunk'];
export type Checkpoint = Schemas['Checkpoint'];
/** Accept, reject, or undo the decision (the hunk is pending again). */
export type Decision = 'accept' | 'reject' | 'undo';

/** What restoring a checkpoint would change (shown before it is done). */
export interface RestorePreview {
  checkpoint: Checkpoint;
  write: string[];
  remove: string[];
  restart: boolean;
}

/** Hunk review and checkpoints of one project, on the generated client. @throws ApiError */
export function reviewApi(client: VaporformClient, projectId: string) {
  const project = { id: projectId };
  return {
    async changeset(changesetId: string): Promise<Changeset> {
      const r = await client.GET('/api/projects/{id}/changesets/{changesetId}', {
        params: { path: { ...project, changesetId } },
      });
      return unwrap(r).changeset;
    },
    async decideHunk(changesetId: string, hunkId: string, verb: Decision): Promise<Changeset> {
      const params = { path: { ...project, changesetId, hunkId } };
      const r =
        verb === 'accept'
          ? await client.POST('/api/projects/{id}/changesets/{changesetId}/hunks/{hunkId}/accept', {
              params,
            })
          : verb === 'reject'
            ? await client.POST(
                '/api/projects/{id}/changesets/{changesetId}/hunks/{hunkId}/reject',
                { params },
              )
            : await client.POST('/api/projects/{id}/changesets/{changesetId}/hunks/{hunkId}/undo', {
                params,
              });
      return unwrap(r).changeset;
    },
    async decideAll(changesetId: string, verb: Decision): Promise<Changeset> {
      const params = { path: { ...project, changesetId } };
      const r =
        verb === 'accept'
          ? await client.POST('/api/projects/{id}/changesets/{changesetId}/accept', { params })
          : verb === 'reject'
            ? await client.POST('/api/projects/{id}/changesets/{changesetId}/reject', { params })
            : await client.POST('/api/projects/{id}/changesets/{changesetId}/undo', { params });
      return unwrap(r).changeset;
    },
    async checkpoints(): Promise<Checkpoint[]> {
      const r = await client.GET('/api/projects/{id}/checkpoints', {
        params: { path: project },
      });
      return unwrap(r).checkpoints;
    },
    async saveCheckpoint(name: string): Promise<Checkpoint> {
      const r = await client.POST('/api/projects/{id}/checkpoints', {
        params: { path: project },
        body: { name },
      });
      return unwrap(r).checkpoint;
    },
    async previewRestore(checkpointId: string): Promise<RestorePreview> {
      const r = await client.GET('/api/projects/{id}/checkpoints/{checkpointId}', {
        params: { path: { ...project, checkpointId } },
      });
      return unwrap(r);
    },
    async restore(checkpointId: string) {
      const r = await client.POST('/api/projects/{id}/checkpoints/{checkpointId}/restore', {
        params: { path: { ...project, checkpointId } },
      });
      return unwrap(r);
    },
  };
}

export type ReviewApi = ReturnType<typeof reviewApi>;
