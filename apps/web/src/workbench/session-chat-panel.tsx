import {
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type KeyboardEvent,
} from 'react';
import { useInfiniteQuery, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { unwrap, type Schemas } from '@vaporform/sdk';
import { useApp } from '../context.tsx';
import { errorMessage } from '../lib/client.ts';
import type { ProjectSocket } from '../lib/project-socket.ts';
import { Avatar } from './presence.tsx';
import './session-chat.css';

/** A message of the session chat (people, not the assistant). */
export type SessionMessage = Schemas['SessionMessage'];

/** The longest message the server takes, in characters. */
const MAX_CHARS = 4000;
/** How many pages of missed messages a reconnect reads at most (200 each). */
const MAX_CATCH_UP_PAGES = 10;

/** Messages read per page (the server's default page). */
const PAGE = 50;

/** True for a session chat message; the assistant's chat sends `chat` events too (no `text`). */
function isSessionMessage(m: unknown): m is SessionMessage {
  const o = m as Partial<SessionMessage> | null;
  return typeof o?.id === 'string' && typeof o.text === 'string' && typeof o.createdAt === 'string';
}

/** Adds `more` to `list` (oldest first), skipping ids already there. */
function merge(list: SessionMessage[], more: SessionMessage[]): SessionMessage[] {
  const seen = new Set(list.map((m) => m.id));
  const fresh = more.filter((m) => !seen.has(m.id));
  if (!fresh.length) return list;
  return [...list, ...fresh].sort((a, b) =>
    a.createdAt === b.createdAt ? 0 : a.createdAt < b.createdAt ? -1 : 1,
  );
}

/** The cached pages: `pages[0]` the newest (live messages join it), then older ones. */
type Pages = InfiniteData<SessionMessage[], string | null>;

/** The session chat's state, kept by the workbench so the unread count runs while hidden. */
export interface SessionChat {
  messages: SessionMessage[];
  loaded: boolean;
  /** Why the history could not be read, if it could not. */
  error: string | null;
  /** Messages from others that arrived while the panel was hidden. */
  unread: number;
  /** Older messages exist on the server. */
  hasOlder: boolean;
  loadOlder(): Promise<void>;
  /** Posts a message. @throws with the API's message (the composer keeps the text). */
  send(text: string): Promise<void>;
}

/**
 * Reads the session chat of `projectId` into the query cache, a page at a time (newest first,
 * "Earlier messages" reads the page before), and follows it live: `chat` events are added to
 * the cached newest page; after a reconnect, what was missed (`?after=` the last message it has).
 */
export function useSessionChat(opts: {
  projectId: string;
  socket: ProjectSocket | null;
  /** The panel is on screen: nothing counts as unread. */
  visible: boolean;
}): SessionChat {
  const { api } = useApp();
  const { client } = api;
  const { projectId, socket, visible } = opts;
  const queryClient = useQueryClient();
  const [unread, setUnread] = useState(0);
  const visibleRef = useRef(visible);
  visibleRef.current = visible;
  const selfId = api.session.get()?.user.id;
  const queryKey = useMemo(
    () => ['get', '/api/projects/{id}/messages', { params: { path: { id: projectId } } }, 'pages'],
    [projectId],
  );

  const query = useInfiniteQuery({
    queryKey,
    queryFn: async ({ pageParam, signal }) => {
      const r = await client.GET('/api/projects/{id}/messages', {
        signal,
        params: {
          path: { id: projectId },
          query: pageParam ? { before: pageParam, limit: PAGE } : { limit: PAGE },
        },
      });
      return unwrap(r).messages;
    },
    initialPageParam: null as string | null,
    // A full page: there may be more before its oldest message.
    getNextPageParam: (page: SessionMessage[]) =>
      page.length >= PAGE ? (page[0]?.id ?? null) : null,
    // The socket and the catch-up keep it fresh; read again only when the workbench opens.
    staleTime: Infinity,
    refetchOnMount: 'always',
    refetchOnReconnect: false,
  });
  const pages = query.data?.pages;
  const messages = useMemo(() => merge([], [...(pages ?? [])].reverse().flat()), [pages]);

  /** Messages heard before the first page is in the cache: added once it is. */
  const early = useRef<SessionMessage[]>([]);
  const arrived = useCallback(
    (more: SessionMessage[]) => {
      let news: SessionMessage[] = [];
      if (!queryClient.getQueryData<Pages>(queryKey)) {
        early.current = merge(early.current, more);
        return;
      }
      queryClient.setQueryData<Pages>(queryKey, (data) => {
        if (!data) return data;
        const known = new Set(data.pages.flat().map((m) => m.id));
        news = more.filter((m) => !known.has(m.id));
        if (!news.length) return data;
        const [newest = [], ...older] = data.pages;
        return { ...data, pages: [merge(newest, news), ...older] };
      });
      const fromOthers = news.filter((m) => m.userId !== selfId).length;
      if (!visibleRef.current && fromOthers) setUnread((n) => n + fromOthers);
    },
    [queryClient, queryKey, selfId],
  );
  useEffect(() => {
    if (!pages || !early.current.length) return;
    const held = early.current;
    early.current = [];
    arrived(held);
  }, [pages, arrived]);
  useEffect(() => {
    early.current = [];
    setUnread(0);
  }, [projectId]);

  // Live, and what was missed while the socket was down.
  useEffect(() => {
    if (!socket) return;
    let wasOpen = socket.state === 'open';
    const newestId = () => {
      const newest = queryClient.getQueryData<Pages>(queryKey)?.pages[0];
      return newest?.[newest.length - 1]?.id;
    };
    const catchUp = async () => {
      for (let page = 0; page < MAX_CATCH_UP_PAGES; page++) {
        const last = newestId();
        const r = await client.GET('/api/projects/{id}/messages', {
          params: { path: { id: projectId }, query: last ? { after: last, limit: 200 } : {} },
        });
        const got = r.data?.messages ?? [];
        arrived(got);
        if (!last || got.length < 200) return;
      }
    };
    const offEvent = socket.on((e) => {
      if (e.type !== 'chat') return;
      const message = (e.data as { message?: unknown } | undefined)?.message;
      if (isSessionMessage(message)) arrived([message]);
    });
    const offState = socket.onState((s) => {
      if (s === 'open' && wasOpen) void catchUp().catch(() => undefined);
      if (s === 'open') wasOpen = true;
    });
    return () => {
      offEvent();
      offState();
    };
  }, [arrived, client, projectId, socket, queryClient, queryKey]);

  useEffect(() => {
    if (visible) setUnread(0);
  }, [visible]);

  const { fetchNextPage } = query;
  const loadOlder = useCallback(async () => {
    const r = await fetchNextPage();
    if (r.isFetchNextPageError) throw r.error;
  }, [fetchNextPage]);

  const send = useCallback(
    async (text: string) => {
      const r = await client.POST('/api/projects/{id}/messages', {
        params: { path: { id: projectId } },
        body: { text },
      });
      arrived([unwrap(r).message]);
    },
    [arrived, client, projectId],
  );

  return {
    messages,
    loaded: !query.isPending,
    error: query.error && !pages ? errorMessage(query.error) : null,
    unread,
    hasOlder: query.hasNextPage,
    loadOlder,
    send,
  };
}

/** Time of a message: "14:05" today, "Mon 14:05" this week, else the date too. */
function when(iso: string): string {
  const d = new Date(iso);
  const now = new Date();
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === now.toDateString()) return time;
  if (now.getTime() - d.getTime() < 6 * 86_400_000) {
    return `${d.toLocaleDateString(undefined, { weekday: 'short' })} ${time}`;
  }
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`;
}

/** The activity-bar button of the session chat, with the unread count. */
export function SessionChatButton(props: { active: boolean; unread: number; onClick(): void }) {
  const label = props.unread ? `Session chat (${props.unread} unread)` : 'Session chat';
  return (
    <button
      className={props.active ? 'active' : ''}
      aria-label={label}
      aria-pressed={props.active}
      title={label}
      onClick={props.onClick}
      data-testid="session-chat-button"
    >
      <svg
        className="svg-icon"
        width={22}
        height={22}
        viewBox="0 0 16 16"
        fill="none"
        stroke="currentColor"
        strokeWidth={1.1}
        strokeLinejoin="round"
        aria-hidden="true"
      >
        <path d="M1.5 2.5h9v6.5h-5l-2.5 2v-2h-1.5z M12 5.5h2.5V12H13v2l-2.5-2H6.5v-1.5" />
      </svg>
      {props.unread > 0 && (
        <span className="unread-badge" data-testid="session-unread">
          {props.unread > 99 ? '99+' : props.unread}
        </span>
      )}
    </button>
  );
}

/** The session chat between the people of the project, beside the assistant's chat. */
export function SessionChatPanel(props: { chat: SessionChat }) {
  const { api } = useApp();
  const { chat } = props;
  const selfId = api.session.get()?.user.id;
  const [input, setInput] = useState('');
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const list = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const box = useRef<HTMLTextAreaElement>(null);

  // Stay at the bottom as messages come, unless the person scrolled up to read.
  useLayoutEffect(() => {
    const el = list.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [chat.messages]);

  useEffect(() => box.current?.focus(), []);

  async function submit() {
    const text = input.trim();
    if (!text || sending) return;
    setSending(true);
    setProblem(null);
    try {
      await chat.send(text);
      setInput('');
      stick.current = true;
    } catch (err) {
      setProblem(errorMessage(err));
    } finally {
      setSending(false);
      box.current?.focus();
    }
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void submit();
    }
  }

  return (
    <section className="side-panel session-chat" aria-label="Session chat">
      <div className="panel-head">
        <h2>Session</h2>
      </div>
      <div
        className="session-list"
        ref={list}
        role="log"
        aria-live="polite"
        aria-label="Messages"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {chat.hasOlder && (
          <button
            className="linklike small session-older"
            onClick={() =>
              void chat.loadOlder().catch((err: unknown) => setProblem(errorMessage(err)))
            }
          >
            Earlier messages
          </button>
        )}
        {!chat.loaded && <p className="muted small pad">Loading…</p>}
        {chat.error && <p className="error small pad">{chat.error}</p>}
        {chat.loaded && !chat.error && chat.messages.length === 0 && (
          <p className="muted small pad">
            Talk with everyone in this project. Messages stay here for people who join later.
          </p>
        )}
        {chat.messages.map((m, i) => {
          const prev = chat.messages[i - 1];
          const grouped =
            prev &&
            prev.userId === m.userId &&
            Date.parse(m.createdAt) - Date.parse(prev.createdAt) < 5 * 60_000;
          const mine = m.userId === selfId;
          return (
            <div
              key={m.id}
              className={`session-message ${grouped ? 'grouped' : ''} ${mine ? 'mine' : ''}`}
              data-testid="session-message"
            >
              {grouped ? (
                <span className="session-gutter" />
              ) : (
                <Avatar userId={m.userId ?? m.name} name={m.name} size={26} you={mine} />
              )}
              <div className="session-body">
                {!grouped && (
                  <div className="session-meta">
                    <span className="session-author">{mine ? `${m.name} (you)` : m.name}</span>
                    <time dateTime={m.createdAt} title={new Date(m.createdAt).toLocaleString()}>
                      {when(m.createdAt)}
                    </time>
                  </div>
                )}
                <div className="session-text">{m.text}</div>
              </div>
            </div>
          );
        })}
      </div>
      <form
        className="session-composer"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <textarea
          ref={box}
          rows={2}
          value={input}
          maxLength={MAX_CHARS}
          placeholder="Message everyone here (Enter to send, Shift+Enter for a new line)"
          aria-label="Message to the session"
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={onKey}
        />
        {problem && (
          <p className="error small" role="alert">
            {problem}
          </p>
        )}
      </form>
    </section>
  );
}
