import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
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
  /** Changes whenever a new checkpoint may exist (an assistant turn ended). */
  refresh?: unknown;
  /** After a restore: the chat reloads (later messages show as after the checkpoint). */
  onRestored(checkpoint: Checkpoint): void;
}) {
  const { api, notify } = useApp();
  const cps = useMemo(() => reviewApi(api.client, props.projectId), [api, props.projectId]);
  const [list, setList] = useState<Checkpoint[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [saving, setSaving] = useState(false);
  const [confirm, setConfirm] = useState<RestorePreview | null>(null);
  const [restoring, setRestoring] = useState(false);

  const load = useCallback(() => {
    cps.checkpoints().then(
      (l) => {
        setList(l);
        setError(null);
      },
      (err: unknown) => setError((err as Error).message),
    );
  }, [cps]);
  useEffect(load, [load, props.refresh]);

  async function save(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    if (!n || saving) return;
    setSaving(true);
    try {
      await cps.saveCheckpoint(n);
      setName('');
      notify(`Checkpoint “${n}” saved`);
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    } finally {
      setSaving(false);
    }
  }

  async function ask(c: Checkpoint) {
    try {
      setConfirm(await cps.previewRestore(c.id));
    } catch (err) {
      notify((err as Error).message, 'error');
    }
  }

  async function restore(p: RestorePreview) {
    setRestoring(true);
    try {
      const r = await cps.restore(p.checkpoint.id);
      setConfirm(null);
      notify(
        `Restored “${p.checkpoint.name}”: ${r.restored.files.length} written back, ${r.restored.removed.length} removed${r.restart ? '; the container restarts' : ''}. “${r.checkpoint.name}” undoes it.`,
      );
      props.onRestored(p.checkpoint);
      load();
    } catch (err) {
      notify((err as Error).message, 'error');
    } finally {
      setRestoring(false);
    }
  }

  return (
    <section className="checkpoint-timeline" aria-label="Checkpoints" data-testid="checkpoints">
      <form onSubmit={(e) => void save(e)}>
        <input
          aria-label="Checkpoint name"
          placeholder="Name this moment…"
          value={name}
          maxLength={200}
          onChange={(e) => setName(e.target.value)}
        />
        <button type="submit" className="small-btn" disabled={!name.trim() || saving}>
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
          busy={restoring}
          onCancel={() => setConfirm(null)}
          onConfirm={() => void restore(confirm)}
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
