import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { useApp } from '../context.tsx';
import type { ProjectSocket } from '../lib/project-socket.ts';

/** The cache entry saying the running container has older environment values than saved. */
const restartKey = (projectId: string) => ['vf', 'environment-restart', projectId] as const;

/** When the environment last changed without reaching the running container (ms), if it did. */
export function useRestartNeeded(projectId: string): number | null {
  const q = useQuery<number | null>({
    queryKey: restartKey(projectId),
    queryFn: () => null,
    enabled: false,
  });
  return q.data ?? null;
}

/** Marks (at = now) or clears the "restart to apply" notice of a project. */
export function setRestartNeeded(qc: QueryClient, projectId: string, needed: boolean): void {
  qc.setQueryData(restartKey(projectId), needed ? Date.now() : null);
}

/**
 * Every member's open IDE hears `environment_changed` on the project socket: when the change
 * needs a restart, the notice is set (the settings' Environment section shows "Restart to
 * apply") and a message says so — once for the person who saved it, who was already told.
 */
export function useEnvironmentNotice(socket: ProjectSocket | null, projectId: string): void {
  const { notify } = useApp();
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!socket) return;
    return socket.on((e) => {
      if (e.type !== 'environment_changed' || !e.data.restartRequired) return;
      const since = queryClient.getQueryData<number | null>(restartKey(projectId));
      setRestartNeeded(queryClient, projectId, true);
      // Our own save set it a moment ago (and said so).
      if (since && Date.now() - since < 5_000) return;
      notify('The environment changed: restart the project to apply it (Settings › Environment).');
    });
  }, [socket, projectId, queryClient, notify]);
}
