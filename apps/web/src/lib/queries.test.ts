import { QueryClient } from '@tanstack/react-query';
import { projectEventOf, type ProjectEvent } from '@vaporform/sdk';
import { describe, expect, it } from 'vitest';
import { invalidateForEvent } from './queries.ts';

const projectId = 'p1';
const project = { params: { path: { id: projectId } } };

/** The cache key of a turn's review (openapi-react-query's). */
function changesetKey(changesetId: string) {
  return [
    'get',
    '/api/projects/{id}/changesets/{changesetId}',
    { params: { path: { id: projectId, changesetId } } },
  ];
}

function cacheWith(): QueryClient {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  const turn = (id: string, paths: string[]) => ({
    changeset: { id, files: paths.map((path) => ({ path, hunks: [] })) },
  });
  qc.setQueryData(changesetKey('c-app'), turn('c-app', ['app.js', 'lib/util.js']));
  qc.setQueryData(changesetKey('c-css'), turn('c-css', ['style.css']));
  qc.setQueryData(['get', '/api/projects/{id}/checkpoints', project], { checkpoints: [] });
  qc.setQueryData(['get', '/api/projects/{id}/review/pending', project], { files: [] });
  return qc;
}

function stale(qc: QueryClient, key: unknown[]): boolean | undefined {
  return qc.getQueryState(key)?.isInvalidated;
}

describe('cached server state made stale by project-socket events', () => {
  it('reads an open review again when one of its turn’s files changes, not others', () => {
    const qc = cacheWith();
    const event: ProjectEvent = projectEventOf('file_changed', {
      path: 'lib/util.js',
      version: 3,
      source: 'user',
      operation: 'write',
    });
    invalidateForEvent(qc, projectId, event);
    expect(stale(qc, changesetKey('c-app'))).toBe(true);
    expect(stale(qc, changesetKey('c-css'))).toBe(false);
    expect(stale(qc, ['get', '/api/projects/{id}/review/pending', project])).toBe(true);
  });

  it('counts each file of a files_changed (a restore) the same way', () => {
    const qc = cacheWith();
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('files_changed', {
        source: 'user',
        files: [
          { path: 'README.md', version: 2, operation: 'write' },
          { path: 'style.css', version: 4, operation: 'restore' },
        ],
      }),
    );
    expect(stale(qc, changesetKey('c-css'))).toBe(true);
    expect(stale(qc, changesetKey('c-app'))).toBe(false);
  });

  it('reads every open review again on review_changed (another member decided)', () => {
    const qc = cacheWith();
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('review_changed', {
        changesetId: 'c-css',
        userId: 'u2',
        state: 'accepted',
        hunks: [{ id: 'h1', path: 'style.css' }],
      }),
    );
    expect(stale(qc, changesetKey('c-css'))).toBe(true);
    expect(stale(qc, ['get', '/api/projects/{id}/review/pending', project])).toBe(true);
    expect(stale(qc, ['get', '/api/projects/{id}/checkpoints', project])).toBe(false);
  });

  it('reads the checkpoint timeline again when a checkpoint is made', () => {
    const qc = cacheWith();
    invalidateForEvent(
      qc,
      projectId,
      projectEventOf('checkpoint_created', {
        checkpointId: 'k1',
        name: 'Before the assistant: tune it',
        kind: 'assistant',
        userId: 'u1',
      }),
    );
    expect(stale(qc, ['get', '/api/projects/{id}/checkpoints', project])).toBe(true);
    expect(stale(qc, changesetKey('c-app'))).toBe(false);
  });
});
