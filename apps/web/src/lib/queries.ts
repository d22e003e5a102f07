import { QueryClient, useQueryClient } from '@tanstack/react-query';
import { fileChangesOf, type ProjectEvent, type Schemas } from '@vaporform/sdk';
import createQueryHooks from 'openapi-react-query';
import { useEffect, useMemo } from 'react';
import { useApp } from '../context.tsx';
import type { ProjectSocket } from './project-socket.ts';

/** The IDE's query cache: server state lives here, kept fresh by project-socket events. */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      // The project socket says when something changed: no refetch on focus or on a timer.
      queries: { staleTime: 30_000, refetchOnWindowFocus: false, retry: 1 },
    },
  });
}

/** TanStack Query hooks over the generated client (`$api.useQuery('get', '/api/projects')`). */
export function useApiQueries() {
  const { api } = useApp();
  return useMemo(() => createQueryHooks(api.client), [api]);
}

/** The cache key of project `id`'s pending review (`GET …/review/pending`). */
export function pendingReviewKey(projectId: string): [string, string, unknown] {
  return ['get', '/api/projects/{id}/review/pending', { params: { path: { id: projectId } } }];
}

/** Which cached GETs of project `id` an event makes stale (openapi-react-query's keys). */
export function staleQueries(projectId: string, event: ProjectEvent): [string, string, unknown?][] {
  const project = { params: { path: { id: projectId } } };
  // Pending review marks move with the files' lines and change with every turn and decision.
  const pendingReview = pendingReviewKey(projectId);
  switch (event.type) {
    case 'file_changed':
    case 'files_changed':
      return [
        ['get', '/api/projects/{id}/files', project],
        ['get', '/api/projects/{id}/files/{path}'],
        ['get', '/api/projects/{id}/history/{path}'],
        ['get', '/api/projects/{id}/deleted', project],
        pendingReview,
      ];
    case 'review_changed':
      return [['get', '/api/projects/{id}/changesets/{changesetId}'], pendingReview];
    case 'checkpoint_created':
      return [['get', '/api/projects/{id}/checkpoints', project]];
    case 'container_status':
      return [
        ['get', '/api/containers/{projectId}'],
        ['get', '/api/containers'],
        ['get', '/api/projects'],
        ['get', '/api/projects/{id}', project],
      ];
    case 'membership':
      return [
        ['get', '/api/projects/{id}', project],
        ['get', '/api/projects/{id}/members', project],
        ['get', '/api/projects'],
      ];
    case 'chat':
    case 'chat_rewound':
      return [['get', '/api/projects/{id}/chat', project], pendingReview];
    case 'environment_changed':
      return [['get', '/api/projects/{id}/env', project]];
    case 'integration_changed':
      return [['get', '/api/projects/{id}/integrations', project]];
    // The panel shows an agent's change at once (it patches the cache); the list is read again
    // anyway, because a read already on its way may have left the server before the change and
    // would otherwise land after the patch and undo it (a machine stuck at "pending").
    case 'infrastructure_status':
    case 'agent_status':
      return [['get', '/api/infrastructure']];
    case 'claude-response':
    case 'claude-error':
      return [['get', '/api/projects/{id}/activity', project], pendingReview];
    default:
      return [];
  }
}

/**
 * Invalidates what `event` makes stale in `queryClient`: the keys of {@link staleQueries}, and
 * open reviews (`GET …/changesets/:changesetId`) whose turn touched a file the event changed.
 */
export function invalidateForEvent(
  queryClient: QueryClient,
  projectId: string,
  event: ProjectEvent,
): void {
  for (const queryKey of staleQueries(projectId, event)) {
    void queryClient.invalidateQueries({ queryKey: queryKey.filter((k) => k !== undefined) });
  }
  const paths = new Set(fileChangesOf(event).map((c) => c.path));
  if (!paths.size) return;
  void queryClient.invalidateQueries({
    queryKey: ['get', '/api/projects/{id}/changesets/{changesetId}'],
    predicate: (q) =>
      (q.state.data as { changeset?: Schemas['Changeset'] } | undefined)?.changeset?.files.some(
        (f) => paths.has(f.path),
      ) ?? false,
  });
}

/** Invalidates the cached queries each event of `socket` makes stale, while mounted. */
export function useProjectEventInvalidation(socket: ProjectSocket | null, projectId: string): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!socket) return;
    return socket.on((event) => invalidateForEvent(queryClient, projectId, event));
  }, [socket, projectId, queryClient]);
}
