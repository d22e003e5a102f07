import { useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useApp } from '../context.tsx';
import { errorMessage } from '../lib/client.ts';
import { useApiQueries } from '../lib/queries.ts';
import { useEscape } from '../lib/use-escape.ts';
import { reviewApi, type Checkpoint, type RestorePreview } from './review-api.ts';
import './review-dialog.css';

const kindLabel: Record<Checkpoint['kind'], string> = {
  manual: 'saved',
  assistant: 'before the assistant',
  restore: 'before a restore',
};

/** "12:04" today, else a short date and time. */
function when(iso: string): string {
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/**
 * The project's checkpoints beside the chat, newest first: "Save checkpoint" with a name, the
 * automatic ones (before each assistant turn, before each restore), and Restore with a
 * confirmation that says what will change. Editors only (the server refuses others).
 */
export function CheckpointTimeline(props: {
  projectId: string;
  /**
   * Not needed any more: the list follows `checkpoint_created` events. Kept so callers that
   * still pass it compile.
   */
  refresh?: unknown;
  /** After a restore: the chat reloads (later messages show as after the checkpoint). */
  onRestored(checkpoint: Checkpoint): void;
}) {
  const { api, notify } = useApp();
  const { projectId, onRestored } = props;
  const cps = useMemo(() => reviewApi(api.client, projectId), [api, projectId]);
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  // Every new checkpoint (saved, before a turn, before a restore; anyone's) is announced by a
  // `checkpoint_created` event, which makes this stale (`staleQueries`).
  const listQuery = $api.queryOptions('get', '/api/projects/{id}/checkpoints', {
    params: { path: { id: projectId } },
  });
  const query = useQuery(listQuery);
  const list = query.data?.checkpoints ?? null;
  const error = query.error ? errorMessage(query.error) : null;
  const [name, setName] = useState('');
  const [confirm, setConfirm] = useState<RestorePreview | null>(null);
  const reload = () => queryClient.invalidateQueries({ queryKey: listQuery.queryKey });

  const saving = useMutation({
    mutationFn: (n: string) => cps.saveCheckpoint(n),
    onSuccess: (c) => {
      setName('');
      notify(`Checkpoint “${c.name}” saved`);
    },
    onError: (err) => notify(errorMessage(err), 'error'),
    onSettled: reload,
  });

  const restoring = useMutation({
    mutationFn: (p: RestorePreview) => cps.restore(p.checkpoint.id),
    onSuccess: (r, p) => {
      setConfirm(null);
      notify(
        `Restored “${p.checkpoint.name}”: ${r.restored.files.length} written back, ${r.restored.removed.length} removed${r.restart ? '; the container restarts' : ''}. “${r.checkpoint.name}” undoes it.`,
      );
      onRestored(p.checkpoint);
    },
    onError: (err) => notify(errorMessage(err), 'error'),
    onSettled: reload,
  });

  function save(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    if (!n || saving.isPending) return;
    saving.mutate(n);
  }

  /** What a restore would change now: read when asked, never from the cache. */
  async function ask(c: Checkpoint) {
    try {
      setConfirm(await cps.previewRestore(c.id));
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  return (
    <section className="checkpoint-timeline" aria-label="Checkpoints" data-testid="checkpoints">
      <form onSubmit={save}>
        <input
          aria-label="Checkpoint name"
          placeholder="Name this moment…"
          value={name}
          maxLength={200}
          onChange={(e) => setName(e.target.value)}
        />
        <button type="submit" className="small-btn" disabled={!name.trim() || saving.isPending}>
          Save checkpoint
        </button>
      </form>
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      {list && list.length === 0 && (
        <p className="muted small">No checkpoints yet: one is made before every assistant turn.</p>
      )}
      {list && list.length > 0 && (
        <ol className="checkpoint-list">
          {list.map((c) => (
            <li key={c.id} className={`kind-${c.kind}`} data-testid="checkpoint">
              <span className="checkpoint-name" title={c.name}>
                {c.name}
              </span>
              <span className="muted small" title={new Date(c.createdAt).toLocaleString()}>
                {kindLabel[c.kind]} · {when(c.createdAt)}
              </span>
              <button
                className="small-btn"
                onClick={() => void ask(c)}
                aria-label={`Restore ${c.name}`}
              >
                Restore
              </button>
            </li>
          ))}
        </ol>
      )}
      {confirm && (
        <RestoreConfirm
          preview={confirm}
          busy={restoring.isPending}
          onCancel={() => setConfirm(null)}
          onConfirm={() => restoring.mutate(confirm)}
        />
      )}
    </section>
  );
}

function RestoreConfirm(props: {
  preview: RestorePreview;
  busy: boolean;
  onCancel(): void;
  onConfirm(): void;
}) {
  const { checkpoint, write, remove, restart } = props.preview;
  useEscape(true, props.onCancel);
  const nothing = write.length === 0 && remove.length === 0;
  return (
    <div className="modal-backdrop" role="presentation">
      <div
        className="modal restore-summary"
        role="dialog"
        aria-modal="true"
        aria-labelledby="restore-title"
        data-testid="restore-confirm"
      >
        <h2 id="restore-title">Restore “{checkpoint.name}”?</h2>
        <p className="small">
          Taken {new Date(checkpoint.createdAt).toLocaleString()} ({checkpoint.files} file
          {checkpoint.files === 1 ? '' : 's'}).
        </p>
        {nothing ? (
          <p className="small">Every file is already as it was then.</p>
        ) : (
          <>
            {write.length > 0 && (
              <div className="small">
                {write.length === 1
                  ? '1 file goes back to its content then:'
                  : `${write.length} files go back to their content then:`}
                <ul>
                  {write.slice(0, 20).map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                  {write.length > 20 && <li>… and {write.length - 20} more</li>}
                </ul>
              </div>
            )}
            {remove.length > 0 && (
              <div className="small">
                {remove.length} file{remove.length === 1 ? '' : 's'} created since will be removed:
                <ul>
                  {remove.slice(0, 20).map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                  {remove.length > 20 && <li>… and {remove.length - 20} more</li>}
                </ul>
              </div>
            )}
          </>
        )}
        <p className="small">
          Chat messages after this point stay in the history, marked “after checkpoint”.
        </p>
        {restart && (
          <p className="small" role="note">
            The run command or dependencies differ: a running container restarts.
          </p>
        )}
        <p className="muted small">
          Nothing is lost: the current state is saved as a checkpoint first, so this can be undone.
        </p>
        <div className="row end">
          <button onClick={props.onCancel} disabled={props.busy}>
            Cancel
          </button>
          <button className="primary" onClick={props.onConfirm} disabled={props.busy} autoFocus>
            {props.busy ? 'Restoring…' : 'Restore'}
          </button>
        </div>
      </div>
    </div>
  );
}
