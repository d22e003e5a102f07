import { useQueryClient } from '@tanstack/react-query';
import type { Schemas } from '@vaporform/sdk';
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import { Icon } from './icons.tsx';
import { ApiError, errorMessage, unwrap } from '../lib/client.ts';
import { readSse } from '../lib/sse.ts';
import { useApiQueries } from '../lib/queries.ts';
import { CheckpointTimeline } from './checkpoint-timeline.tsx';
import { changesLabel } from './pending-review.tsx';
import { ReviewDialog } from './review-dialog.tsx';

type ChatMessage = Schemas['ChatMessage'];

/** A tool the assistant used: as stored (name, summary), or as streamed (with its input). */
interface ChatTool {
  name: string;
  summary?: string;
  input?: unknown;
}

/** A file the assistant changed, as the chat stream's `file_change` event tells it. */
interface ChatFileChange {
  path: string;
  operation: string;
  diff?: string;
}

/** What an answer said and did, in the order it happened. */
type Part = { text: string } | { tool: ChatTool };

/**
 * A turn as shown: a stored message of the history (`id` set; `rewoundAt`: a checkpoint
 * restore rewound the chat past it), or one being streamed.
 */
interface Turn extends Partial<Omit<ChatMessage, 'tools' | 'error'>> {
  role: ChatMessage['role'];
  content: string;
  tools?: ChatTool[];
  /**
   * Text and tools interleaved as they came: from the stream, or cut from a stored answer at
   * its tools' offsets (`partsOf`; answers stored without offsets have none: text, then tools).
   */
  parts?: Part[];
  changes?: ChatFileChange[];
  streaming?: boolean;
  /** Why the run ended early (Stop, a limit): said quietly, not as an error. */
  stopped?: string;
  error?: string | null;
  reverted?: boolean;
}

/**
 * The AI assistant: streamed answers, tool activity as it happens, and each changeset as
 * per-file diffs with a revert button. History comes from the server (it persists).
 */
export function ChatPanel(props: {
  projectId: string;
  canEdit: boolean;
  onOpen(path: string): void;
  /** A message to send on the person's behalf ("Fix with AI"); sent once per nonce. */
  request?: { text: string; nonce: number };
}) {
  const { api, notify, theme } = useApp();
  const [turns, setTurns] = useState<Turn[]>([]);
  const [reviewing, setReviewing] = useState<string | null>(null);
  const [checkpoints, setCheckpoints] = useState(false);
  const [input, setInput] = useState('');
  const [busy, setBusy] = useState(false);
  const [stopping, setStopping] = useState(false);
  const list = useRef<HTMLDivElement>(null);
  const abort = useRef<AbortController | null>(null);
  // The same query as the explorer's marks (one request): pending changes per turn.
  const pendingReview = useApiQueries().useQuery('get', '/api/projects/{id}/review/pending', {
    params: { path: { id: props.projectId } },
  });
  const pendingByTurn = useMemo(() => {
    const counts = new Map<string, number>();
    for (const f of pendingReview.data?.files ?? [])
      for (const h of f.hunks) counts.set(h.changesetId, (counts.get(h.changesetId) ?? 0) + 1);
    return counts;
  }, [pendingReview.data]);

  // The stored history, read again on `chat` / `chat_rewound` events (a checkpoint restore, a
  // turn of another member: useProjectEventInvalidation); never applied while ours streams.
  const queryClient = useQueryClient();
  const history = useApiQueries().useQuery(
    'get',
    '/api/projects/{id}/chat',
    { params: { path: { id: props.projectId } } },
    { retry: false },
  );
  const [streamError, setStreamError] = useState<string | null>(null);
  const unavailable = history.error ? errorMessage(history.error) : streamError;
  const loaded = history.data !== undefined || history.isError;
  const reloadHistory = () =>
    void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}/chat'] });
  useEffect(() => {
    const stored = history.data?.messages;
    if (stored && !abort.current) setTurns((shown) => fromHistory(shown, stored));
  }, [history.data]);
  useEffect(() => () => abort.current?.abort(), [props.projectId]);

  useEffect(() => {
    list.current?.scrollTo({ top: list.current.scrollHeight });
  }, [turns]);

  function patchLast(fn: (t: Turn) => Turn) {
    setTurns((ts) => (ts.length ? [...ts.slice(0, -1), fn(ts[ts.length - 1]!)] : ts));
  }

  // "Fix with AI" and the like: the same path as a typed message.
  const handled = useRef<number | null>(null);
  const sendRef = useRef(sendMessage);
  sendRef.current = sendMessage;
  useEffect(() => {
    const r = props.request;
    // After the history: it would otherwise replace the turn being streamed.
    if (!r || !loaded || handled.current === r.nonce || !props.canEdit) return;
    handled.current = r.nonce;
    void sendRef.current(r.text);
  }, [props.request, props.canEdit, loaded]);

  async function send(e: FormEvent) {
    e.preventDefault();
    const message = input.trim();
    if (!message || busy) return;
    setInput('');
    await sendMessage(message);
  }

  async function sendMessage(message: string) {
    if (busy) return;
    setBusy(true);
    setTurns((ts) => [
      ...ts,
      { role: 'user', content: message },
      { role: 'assistant', content: '', streaming: true, tools: [], parts: [], changes: [] },
    ]);
    const ctrl = new AbortController();
    abort.current = ctrl;
    try {
      const stream = unwrap(
        await api.client.POST('/api/projects/{id}/chat', {
          params: { path: { id: props.projectId } },
          body: { message },
          parseAs: 'stream',
          signal: ctrl.signal,
          headers: { accept: 'text/event-stream' },
        }),
      );
      if (!stream) throw new Error('The server sent no stream');
      for await (const ev of readSse(stream)) {
        const data = parse(ev.data);
        if (ev.event === 'text') {
          const delta = typeof data === 'string' ? data : String(data.text ?? data.delta ?? '');
          patchLast((t) => ({ ...t, content: t.content + delta, parts: withText(t.parts, delta) }));
        } else if (ev.event === 'tool') {
          const tool: ChatTool = {
            name: String(data.name ?? 'tool'),
            input: data.input,
            summary: str(data.summary ?? data.result),
          };
          patchLast((t) => ({
            ...t,
            tools: [...(t.tools ?? []), tool],
            parts: [...(t.parts ?? []), { tool }],
          }));
        } else if (ev.event === 'file_change') {
          const change: ChatFileChange = {
            path: String(data.path ?? ''),
            operation: String(data.operation ?? 'update'),
            diff: str(data.diff),
          };
          patchLast((t) => ({ ...t, changes: [...(t.changes ?? []), change] }));
        } else if (ev.event === 'done') {
          const stopped = data.stopped as { message?: unknown } | undefined;
          patchLast((t) => ({
            ...t,
            ...(stopped ? { stopped: str(stopped.message) ?? 'Stopped.' } : {}),
            ...(typeof data.messageId === 'string' ? { id: data.messageId } : {}),
            streaming: false,
            changesetId: str(data.changesetId) ?? null,
          }));
        } else if (ev.event === 'error') {
          patchLast((t) => ({
            ...t,
            streaming: false,
            error: str(data.message) ?? 'The assistant failed',
          }));
        }
      }
      patchLast((t) => ({ ...t, streaming: false }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 503) setStreamError(err.message);
      patchLast((t) => ({ ...t, streaming: false, error: errorMessage(err) }));
    } finally {
      setBusy(false);
      setStopping(false);
      abort.current = null;
      reloadHistory();
    }
  }

  /** Stop: the server ends the run where it is; the stream then ends with `done`. */
  async function stop() {
    setStopping(true);
    try {
      unwrap(
        await api.client.POST('/api/projects/{id}/chat/stop', {
          params: { path: { id: props.projectId } },
        }),
      );
    } catch (err) {
      setStopping(false);
      notify(errorMessage(err), 'error');
    }
  }

  async function revert(turn: Turn) {
    if (!turn.changesetId) return;
    try {
      const r = unwrap(
        await api.client.POST('/api/projects/{id}/changesets/{changesetId}/revert', {
          params: { path: { id: props.projectId, changesetId: turn.changesetId } },
        }),
      );
      notify(`Reverted ${r.reverted.length} file${r.reverted.length === 1 ? '' : 's'}`);
      setTurns((ts) => ts.map((t) => (t === turn ? { ...t, reverted: true } : t)));
    } catch (err) {
      notify(
        err instanceof ApiError && err.status === 409
          ? 'Some of these files changed since; revert refused so nothing is lost.'
          : errorMessage(err),
        'error',
      );
    }
  }

  return (
    <section className="side-panel chat" aria-label="Assistant">
      <div className="panel-head">
        <h2>Assistant</h2>
        {props.canEdit && (
          <button
            className="small-btn"
            aria-pressed={checkpoints}
            onClick={() => setCheckpoints((v) => !v)}
          >
            Checkpoints
          </button>
        )}
      </div>
      {checkpoints && props.canEdit && (
        <CheckpointTimeline projectId={props.projectId} refresh={busy} onRestored={reloadHistory} />
      )}
      {unavailable && (
        <p className="banner warn small" role="status">
          {unavailable}
        </p>
      )}
      <div className="chat-list" ref={list} aria-live="polite">
        {turns.length === 0 && (
          <p className="muted small pad">
            Ask the assistant to build, change or debug this project.
          </p>
        )}
        {turns.map((t, i) => (
          <article
            key={i}
            className={`chat-turn chat-${t.role}${t.rewoundAt ? ' after-checkpoint' : ''}`}
            data-testid={`chat-${t.role}`}
          >
            <div className="chat-role">
              {t.role === 'user' ? 'You' : 'Assistant'}
              {t.rewoundAt && <span className="chat-after-checkpoint"> · after checkpoint</span>}
            </div>
            {t.parts ? (
              t.parts.map((part, j) =>
                'tool' in part ? (
                  <ToolLine key={j} tool={part.tool} />
                ) : (
                  <div key={j} className="chat-text">
                    {part.text}
                  </div>
                ),
              )
            ) : (
              <>
                {t.content && <div className="chat-text">{t.content}</div>}
                {t.tools?.map((tool, j) => (
                  <ToolLine key={j} tool={tool} />
                ))}
              </>
            )}
            {/* Turns read from the history carry only their changeset id: the same buttons. */}
            {((t.changes && t.changes.length > 0) || t.changesetId) && (
              <div className="changeset" data-testid="changeset">
                <div className="row between">
                  <strong className="small">
                    {t.changes?.length
                      ? `${t.changes.length} file${t.changes.length === 1 ? '' : 's'} changed`
                      : 'Files changed'}
                    {t.changesetId && pendingByTurn.get(t.changesetId) ? (
                      <span className="pending-count" data-testid="turn-pending">
                        {' '}
                        · {changesLabel(pendingByTurn.get(t.changesetId) ?? 0)} to review
                      </span>
                    ) : null}
                  </strong>
                  {t.changesetId && !t.streaming && (
                    <button
                      className="small-btn review-btn"
                      onClick={() => setReviewing(t.changesetId ?? null)}
                    >
                      Review
                    </button>
                  )}
                  {t.changesetId && props.canEdit && (
                    <button
                      className="small-btn"
                      disabled={t.reverted}
                      onClick={() => void revert(t)}
                    >
                      {t.reverted ? 'Reverted' : 'Revert'}
                    </button>
                  )}
                </div>
                {t.changes?.map((c, j) => (
                  <details key={j} open={j < 3}>
                    <summary>
                      <button
                        className="linklike"
                        onClick={(e) => (e.preventDefault(), props.onOpen(c.path))}
                      >
                        {c.path}
                      </button>{' '}
                      <span className="muted small">{c.operation}</span>
                    </summary>
                    {c.diff && <UnifiedDiff diff={c.diff} />}
                  </details>
                ))}
              </div>
            )}
            {t.streaming && (
              <div className="muted small" role="status">
                Working…
              </div>
            )}
            {t.stopped && (
              <p className="muted small chat-stopped" role="status" data-testid="chat-stopped">
                {t.stopped}
              </p>
            )}
            {t.error && !t.stopped && (
              <p className="error small" role="alert">
                {t.error}
              </p>
            )}
          </article>
        ))}
      </div>
      {reviewing && (
        <ReviewDialog
          projectId={props.projectId}
          changesetId={reviewing}
          canEdit={props.canEdit}
          theme={theme}
          onClose={() => setReviewing(null)}
        />
      )}
      <form className="chat-input" onSubmit={send}>
        <textarea
          rows={3}
          aria-label="Message to the assistant"
          placeholder={
            props.canEdit
              ? 'Describe a change… (Enter to send, Shift+Enter for a new line)'
              : 'Viewers cannot use the assistant'
          }
          value={input}
          disabled={!props.canEdit}
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              e.currentTarget.form?.requestSubmit();
            }
          }}
        />
        {busy ? (
          <button
            type="button"
            className="danger"
            disabled={stopping}
            title="Stop the assistant where it is (what it changed so far is kept)"
            onClick={() => void stop()}
          >
            {stopping ? 'Stopping…' : 'Stop'}
          </button>
        ) : (
          <button className="primary" type="submit" disabled={!input.trim() || !props.canEdit}>
            Send
          </button>
        )}
      </form>
    </section>
  );
}

/** One tool the assistant used: its name, what it worked on, what came of it. */
function ToolLine(props: { tool: ChatTool }) {
  return (
    <div className="chat-tool" data-testid="chat-tool">
      <span className="tool-name row">
        <Icon name="gear" size={12} /> {props.tool.name}
      </span>{' '}
      <span className="muted small">{toolLabel(props.tool)}</span>
    </div>
  );
}

/** `parts` with `delta` added to its text (a new text part after a tool). */
function withText(parts: Part[] | undefined, delta: string): Part[] {
  const list = parts ?? [];
  const last = list[list.length - 1];
  if (last && 'text' in last) return [...list.slice(0, -1), { text: last.text + delta }];
  // The blank line between model turns is not shown as a paragraph of its own.
  return delta.trim() ? [...list, { text: delta.replace(/^\n+/, '') }] : list;
}

/**
 * A stored answer as the stream showed it: its text cut where each tool ran (`at`), through
 * `withText` like the stream's deltas. None when a tool has no offset (stored before they were
 * kept) or there are no tools.
 */
function partsOf(content: string, tools: ChatMessage['tools']): Part[] | undefined {
  if (tools.length === 0 || tools.some((tool) => tool.at === undefined)) return undefined;
  let parts: Part[] = [];
  let from = 0;
  for (const tool of tools) {
    const at = Math.min(Math.max(tool.at ?? from, from), content.length);
    parts = [...withText(parts, content.slice(from, at)), { tool }];
    from = at;
  }
  return withText(parts, content.slice(from));
}

/** A unified diff with added/removed lines coloured. */
export function UnifiedDiff(props: { diff: string }) {
  return (
    <pre className="unified-diff" data-testid="unified-diff">
      {props.diff.split('\n').map((line, i) => (
        <span
          key={i}
          className={
            line.startsWith('+') && !line.startsWith('+++')
              ? 'add'
              : line.startsWith('-') && !line.startsWith('---')
                ? 'del'
                : line.startsWith('@@')
                  ? 'hunk'
                  : ''
          }
        >
          {line + '\n'}
        </span>
      ))}
    </pre>
  );
}

/**
 * The stored history as turns; a turn already shown keeps what only its stream told (the
 * files' diffs) and a revert done here.
 */
function fromHistory(shown: Turn[], stored: ChatMessage[]): Turn[] {
  const byId = new Map(shown.filter((t) => t.id).map((t) => [t.id, t]));
  return stored.map((m) => {
    const before = byId.get(m.id);
    // A run a Stop or a limit ended early stores why as its error and at the end of its text:
    // shown quietly, once.
    const early = m.error && m.content.endsWith(m.error) ? m.error : null;
    const content = early ? m.content.slice(0, -early.length).trimEnd() : m.content;
    // The stream's parts know the tools' inputs too; else the stored offsets give the order.
    const parts = before?.parts ?? partsOf(content, m.tools);
    return {
      ...m,
      content,
      ...(early ? { stopped: early } : {}),
      ...(before?.changes ? { changes: before.changes } : {}),
      ...(parts ? { parts } : {}),
      // What only the stream told: a quiet "stopped".
      ...(before?.stopped ? { stopped: before.stopped } : {}),
      ...(before?.reverted ? { reverted: true } : {}),
    };
  });
}

function parse(data: string): Record<string, unknown> & { [k: string]: unknown } {
  try {
    const v = JSON.parse(data) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : { text: v };
  } catch {
    return { text: data };
  }
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v);
}

function toolLabel(tool: ChatTool): string {
  const input = tool.input as Record<string, unknown> | undefined;
  const arg = input && (input.path ?? input.command ?? input.query);
  return [arg ? String(arg) : '', tool.summary ?? ''].filter(Boolean).join(' — ').slice(0, 200);
}
