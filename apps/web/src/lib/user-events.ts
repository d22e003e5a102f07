import { useQueryClient } from '@tanstack/react-query';
import { userEvent, type UserEvent } from '@vaporform/sdk';
import { useEffect } from 'react';
import { useApp } from '../context.tsx';
import { unwrap } from './client.ts';
import { readSse } from './sse.ts';

/** Waits before reading the stream again after it ended or failed (ms), doubling to the last. */
const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/**
 * Follows the signed-in user's own events (`GET /api/me/events`, server-sent) while mounted:
 * being added to a project, a role change or a removal makes the project list stale at once,
 * so the dashboard shows it without a reload. Reconnects with backoff; quiet while offline.
 */
export function useUserEvents(onEvent?: (event: UserEvent) => void): void {
  const { api } = useApp();
  const queryClient = useQueryClient();
  useEffect(() => {
    const ctrl = new AbortController();
    let attempt = 0;
    const run = async () => {
      while (!ctrl.signal.aborted) {
        try {
          const stream = unwrap(
            await api.client.GET('/api/me/events', {
              parseAs: 'stream',
              signal: ctrl.signal,
              headers: { accept: 'text/event-stream' },
            }),
          );
          if (!stream) throw new Error('The server sent no stream');
          attempt = 0;
          // Whatever changed while the stream was down is read once.
          void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects'] });
          for await (const ev of readSse(stream)) {
            const parsed = userEvent.safeParse({ type: ev.event, data: safeJson(ev.data) });
            if (!parsed.success) continue;
            void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects'] });
            onEvent?.(parsed.data);
          }
        } catch {
          // Aborted on unmount, offline, or the session ended (the client signs out then).
        }
        if (ctrl.signal.aborted || !api.session.get()) return;
        const wait = RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]!;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    };
    void run();
    return () => ctrl.abort();
  }, [api, queryClient, onEvent]);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
