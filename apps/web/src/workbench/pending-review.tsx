import type { Schemas } from '@vaporform/sdk';
import { useMemo, useState, type ReactNode } from 'react';
import { useApiQueries } from '../lib/queries.ts';
import { ReviewDialog } from './review-dialog.tsx';

/** One of the assistant's changes nobody has accepted or rejected yet, where it is now. */
export type PendingHunk = Schemas['PendingReview']['files'][number]['hunks'][number];

/** "1 change", "3 changes". */
export function changesLabel(n: number): string {
  return `${n} change${n === 1 ? '' : 's'}`;
}

/**
 * The project's pending review (`GET …/review/pending`) by file path, kept fresh by the
 * project socket (`review_changed`, file changes, assistant turns: see `staleQueries`), and
 * the review dialog opened from a mark (`open(changesetId)`; `dialog` is where it renders).
 */
export function usePendingReview(
  projectId: string,
  opts: { canEdit: boolean; theme: 'dark' | 'light' },
): {
  byPath: Map<string, PendingHunk[]>;
  open(changesetId: string): void;
  dialog: ReactNode;
} {
  const $api = useApiQueries();
  const query = $api.useQuery('get', '/api/projects/{id}/review/pending', {
    params: { path: { id: projectId } },
  });
  const files = query.data?.files;
  const byPath = useMemo(() => new Map((files ?? []).map((f) => [f.path, f.hunks])), [files]);
  const [reviewing, setReviewing] = useState<string | null>(null);
  const dialog = reviewing ? (
    <ReviewDialog
      projectId={projectId}
      changesetId={reviewing}
      canEdit={opts.canEdit}
      theme={opts.theme}
      onClose={() => setReviewing(null)}
    />
  ) : null;
  return { byPath, open: setReviewing, dialog };
}
