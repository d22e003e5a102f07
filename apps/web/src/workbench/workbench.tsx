import { useQueryClient } from '@tanstack/react-query';
import { fileChangesOf, type Schemas } from '@vaporform/sdk';
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { useApp } from '../context.tsx';
import { browserCollabClient } from '../editor/collab-connection.ts';
import { DocumentStore, isDirty, type ChangeAuthor } from '../editor/documents.ts';
import { errorCode, errorMessage, unwrap } from '../lib/client.ts';
import { httpFiles } from '../lib/files.ts';
import { languageOf } from '../lib/languages.ts';
import { ProjectSocket, type ProjectEvent, type SocketState } from '../lib/project-socket.ts';
import { useApiQueries, useProjectEventInvalidation } from '../lib/queries.ts';
import { navigate } from '../lib/router.ts';
import { AccountMenu } from '../screens/account-menu.tsx';
import { ChatPanel } from './chat-panel.tsx';
import { CommandPalette, type Command } from './command-palette.tsx';
import { EditorArea } from './editor-area.tsx';
import { Explorer } from './explorer.tsx';
import { HistoryPanel } from './history-panel.tsx';
import { Icon, type IconName } from './icons.tsx';
import { InfrastructurePanel } from './infrastructure-panel.tsx';
import { PhoneWorkbench, Splitter, useNarrow, usePaneSizes, useRememberedTabs } from './layout.tsx';
import { LogsView } from './logs-view.tsx';
import { usePendingReview } from './pending-review.tsx';
import { PresenceAvatars, usePresence } from './presence.tsx';
import { PreviewPanel } from './preview-panel.tsx';
import { SearchPanel } from './search-panel.tsx';
import { SessionChatButton, SessionChatPanel, useSessionChat } from './session-chat-panel.tsx';
import { useEnvironmentNotice } from './env-notice.ts';
import { SettingsPanel } from './settings-panel.tsx';
import { TerminalPanel } from './terminal-panel.tsx';

type Container = Schemas['Container'];
type CrashReport = Pick<NonNullable<Container['crash']>, 'reason' | 'lines'>;

/**
 * The project's container as the workbench knows it: the listed one, patched at once by
 * `container_status` events and by the person's own actions (before any answer).
 */
export type LiveContainer = Pick<Container, 'projectId' | 'status'> & Partial<Container>;

type SideView =
  'explorer' | 'search' | 'history' | 'chat' | 'session' | 'settings' | 'infrastructure';
type BottomView = 'terminal' | 'logs';

/** A Stop the person asked for, remembered per project until they start it again. */
const stoppedKey = (projectId: string) => `vf.stopped:${projectId}`;

function stoppedByUser(projectId: string): boolean {
  return localStorage.getItem(stoppedKey(projectId)) === '1';
}

/** What "Fix with AI" tells the assistant: the crash and the log it printed last. */
function fixRequest(crash: CrashReport): string {
  const log = crash.lines.join('\n').trim();
  return [
    `The dev server crashed: ${crash.reason}`,
    ...(log ? ['', 'Its last log lines:', '```', log, '```'] : []),
    '',
    'Find the cause in the project files and fix it so the dev server starts again.',
  ].join('\n');
}

const activities: { id: SideView; label: string; icon: IconName; keys: string }[] = [
  { id: 'explorer', label: 'Explorer', icon: 'files', keys: 'Ctrl+Shift+E' },
  { id: 'search', label: 'Search', icon: 'search', keys: 'Ctrl+Shift+F' },
  { id: 'history', label: 'File history', icon: 'history', keys: 'Ctrl+Shift+H' },
  { id: 'chat', label: 'Assistant', icon: 'sparkle', keys: 'Ctrl+Shift+A' },
  { id: 'settings', label: 'Project settings', icon: 'gear', keys: 'Ctrl+,' },
];

/** The VS Code-like workbench of one project. */
export function Workbench(props: { projectId: string }) {
  const { api, drafts, theme, setTheme, notify } = useApp();
  const id = props.projectId;
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const [container, setContainer] = useState<LiveContainer | null>(null);
  const [socketState, setSocketState] = useState<SocketState>('connecting');
  const [socket, setSocket] = useState<ProjectSocket | null>(null);
  // Cached server state (TanStack Query) goes stale by the socket's events, not by timers.
  useProjectEventInvalidation(socket, id);
  // Anyone's env change that needs a restart says so in every member's IDE.
  useEnvironmentNotice(socket, id);
  const byId = { params: { path: { id } } };
  const projectQuery = $api.useQuery('get', '/api/projects/{id}', byId, { retry: false });
  const project = projectQuery.data?.project ?? null;
  const missing = projectQuery.error !== null && errorCode(projectQuery.error) === 'not_found';
  const filesQuery = $api.useQuery('get', '/api/projects/{id}/files', byId);
  const files = filesQuery.data?.files ?? (filesQuery.error ? [] : null);
  // From the list, where a project without a container is simply absent (no 404 to log).
  // Container status arrives as events; it is polled only while they cannot (socket down).
  const containersQuery = $api.useQuery('get', '/api/containers', undefined, {
    refetchInterval: socketState === 'open' ? false : 10_000,
  });
  /** The container list answered (and `container` holds what it says: null, none yet). */
  const [containerKnown, setContainerKnown] = useState(false);
  const listFresh = containersQuery.isFetchedAfterMount;
  useEffect(() => {
    if (!containersQuery.data) return;
    setContainer(containersQuery.data.containers.find((c) => c.projectId === id) ?? null);
    // Together, and only from an answer read now (not a cached list): the auto-start below
    // must never see a known list with the container unset or out of date.
    if (listFresh) setContainerKnown(true);
  }, [containersQuery.data, id, listFresh]);
  useEffect(() => {
    const err = projectQuery.error ?? filesQuery.error;
    if (err && errorCode(err) !== 'not_found') notify(errorMessage(err), 'error');
  }, [projectQuery.error, filesQuery.error, notify]);
  const loadFiles = useCallback(
    () => void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}/files'] }),
    [queryClient],
  );
  const loadContainer = useCallback(
    () => void queryClient.invalidateQueries({ queryKey: ['get', '/api/containers'] }),
    [queryClient],
  );
  const [side, setSide] = useState<SideView | null>('explorer');
  const [bottom, setBottom] = useState<BottomView | null>(null);
  const [bottomOpened, setBottomOpened] = useState<Set<BottomView>>(new Set());
  const [showPreview, setShowPreview] = useState(true);
  const [palette, setPalette] = useState<'files' | 'commands' | null>(null);
  const [reveal, setReveal] = useState<{ path: string; line: number; nonce: number } | undefined>();
  const [historyPath, setHistoryPath] = useState<string | null>(null);
  /** Saves seen (from anyone): each one refreshes the preview. */
  const [changes, setChanges] = useState(0);
  const [stopped, setStopped] = useState(() => stoppedByUser(id));
  const [aiRequest, setAiRequest] = useState<{ text: string; nonce: number } | undefined>();
  const autoStarted = useRef(false);
  /** Our own saves (`path@version`): the preview refreshed on the answer, not on the event. */
  const ownSaves = useRef(new Set<string>());
  // Live co-editing (WS /api/collab); files it does not take load and save over HTTP.
  const collab = useMemo(() => browserCollabClient(api, id), [api, id]);
  useEffect(() => () => collab.close(), [collab]);
  const store = useMemo(
    () => new DocumentStore({ files: httpFiles(api.client), drafts, projectId: id, collab }),
    [api, collab, drafts, id],
  );
  const { docs, active } = useSyncExternalStore(store.subscribe, store.snapshot);

  const canEdit = project ? project.role !== 'viewer' : false;
  const activeDoc = docs.find((d) => d.path === active) ?? null;
  const dirty = useMemo(() => new Set(docs.filter(isDirty).map((d) => d.path)), [docs]);
  // Who is here (title bar, explorer) and the session chat between them.
  const selfId = api.session.get()?.user.id;
  const presence = usePresence(socket, selfId);
  const pendingReview = usePendingReview(id, { canEdit, theme });
  const pendingCounts = useMemo(
    () => new Map([...pendingReview.byPath].map(([path, hunks]) => [path, hunks.length])),
    [pendingReview.byPath],
  );
  const sessionChat = useSessionChat({ projectId: id, socket, visible: side === 'session' });
  // Pane sizes and open tabs, remembered per project; at phone width a read-only layout.
  const layout = usePaneSizes(id);
  // Conversations get a wider side bar of their own size.
  const sidePane = side === 'chat' || side === 'session' ? 'wide' : 'side';
  const narrow = useNarrow();
  useRememberedTabs(store, selfId, id);
  // Who changed a file, by name (the conflict banner): members are kept fresh by events.
  const membersQuery = $api.useQuery('get', '/api/projects/{id}/members', byId);
  const authorName = useCallback(
    (by: ChangeAuthor): string => {
      if (by.source === 'claude') return 'the assistant';
      if (by.source === 'container') return 'a command in the container';
      if (by.source === 'import') return 'an import';
      if (by.source === 'template') return 'the template';
      if (by.userId && by.userId === selfId) return 'you (elsewhere)';
      const member = membersQuery.data?.members.find((m) => m.userId === by.userId);
      return member?.name ?? 'someone else';
    },
    [membersQuery.data, selfId],
  );

  useEffect(() => {
    // Files that still have local drafts (e.g. after a sign-out) open again.
    for (const path of drafts.paths(id)) void store.open(path).catch(() => undefined);
  }, [drafts, id, store]);

  // Live events: file changes from anyone (editors, the AI, the container) and container status.
  useEffect(() => {
    const socket = new ProjectSocket(api, id);
    const offState = socket.onState((s) => {
      setSocketState(s);
      // Catch up on what was missed while disconnected.
      if (s === 'open') {
        loadFiles();
        loadContainer();
      }
    });
    const offEnd = socket.onEnd((code) => {
      if (code !== 4404) return; // 4401: the session ended, the sign-in screen takes over
      notify('You are no longer a member of this project.', 'error');
      navigate('/', { replace: true });
    });
    const off = socket.on((e: ProjectEvent) => {
      if (e.type === 'file_changed' || e.type === 'files_changed') {
        // One file, or every file of a restore (one `files_changed` for all of them).
        for (const d of fileChangesOf(e)) {
          if (d.operation === 'delete') store.remoteDeleted(d.path);
          else
            void store.remoteChanged(d.path, d.version, {
              source: d.source,
              ...(d.userId ? { userId: d.userId } : {}),
            });
          if (d.from !== undefined) store.renamed(d.from, d.path);
          if (!ownSaves.current.delete(`${d.path}@${d.version}`)) setChanges((n) => n + 1);
        }
        // The file list itself goes stale by useProjectEventInvalidation.
      } else if (e.type === 'membership') {
        const { role } = e.data;
        // The project is read again (useProjectEventInvalidation); the role changes at once.
        queryClient.setQueryData(
          $api.queryOptions('get', '/api/projects/{id}', byId).queryKey,
          (old: { project: Schemas['Project'] } | undefined) =>
            old ? { project: { ...old.project, role } } : old,
        );
        notify(
          role === 'viewer'
            ? 'You are now a viewer of this project: read-only.'
            : `Your role in this project is now ${role}.`,
        );
      } else if (e.type === 'container_status') {
        setContainer((c) => ({ ...(c ?? { projectId: id }), ...e.data, projectId: id }));
      }
    });
    socket.start();
    setSocketState(socket.state);
    setSocket(socket);
    return () => {
      off();
      offState();
      offEnd();
      socket.close();
    };
  }, [$api, api, id, loadContainer, loadFiles, notify, queryClient, store]);

  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      if (store.dirtyPaths().length) e.preventDefault();
    };
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [store]);

  const save = useCallback(
    async (path: string) => {
      const r = await store.save(path);
      if (r === 'saved') {
        // Refresh the preview now rather than when the event comes back.
        const version = store.get(path)?.version;
        if (version !== undefined) ownSaves.current.add(`${path}@${version}`);
        setChanges((n) => n + 1);
        loadFiles();
      } else if (r === 'conflict')
        notify(`${path} changed on the server: compare and choose`, 'error');
      else if (r === 'error')
        notify(`Could not save ${path}: ${store.get(path)?.error ?? ''}`, 'error');
    },
    [loadFiles, notify, store],
  );

  const openFile = useCallback(
    (path: string, line?: number) => {
      void store.open(path).catch((err: Error) => notify(err.message, 'error'));
      if (line) setReveal({ path, line, nonce: Math.random() });
    },
    [notify, store],
  );

  const containerAction = useCallback(
    async (action: 'start' | 'stop' | 'restart' | 'rebuild', opts: { quiet?: boolean } = {}) => {
      // A Stop is respected (no start on the next visit) until the person starts it again.
      if (action === 'stop') localStorage.setItem(stoppedKey(id), '1');
      else localStorage.removeItem(stoppedKey(id));
      setStopped(action === 'stop');
      // At once, before the answer: terminals must not try to reconnect to a stopping container.
      setContainer((c) => ({
        ...(c ?? { projectId: id }),
        status: action === 'stop' ? 'stopped' : 'starting',
        crash: null,
      }));
      try {
        const params = { params: { path: { projectId: id } } };
        const { client } = api;
        const r = unwrap(
          action === 'start'
            ? await client.POST('/api/containers/{projectId}/start', params)
            : action === 'stop'
              ? await client.POST('/api/containers/{projectId}/stop', params)
              : action === 'restart'
                ? await client.POST('/api/containers/{projectId}/restart', params)
                : await client.POST('/api/containers/{projectId}/rebuild', params),
        );
        setContainer(r.container);
        if (!opts.quiet) notify(`Container: ${action} requested`);
      } catch (err) {
        notify(errorMessage(err), 'error');
        loadContainer();
      }
    },
    [api, id, loadContainer, notify],
  );

  // Opening a project whose container is not running starts it (as Codespaces does), unless
  // the person stopped it; viewers cannot start containers.
  useEffect(() => {
    if (autoStarted.current || !project || !containerKnown || !canEdit) return;
    autoStarted.current = true;
    if (stoppedByUser(id) || project.status === 'creating' || project.status === 'archived') return;
    const s = container?.status;
    if (!s || s === 'stopped') void containerAction('start', { quiet: true });
  }, [canEdit, container?.status, containerAction, containerKnown, id, project]);

  const fixWithAi = useCallback((crash: CrashReport) => {
    setSide('chat');
    setAiRequest({ text: fixRequest(crash), nonce: Date.now() });
  }, []);

  const openBottom = useCallback((v: BottomView | null) => {
    setBottom(v);
    if (v) setBottomOpened((s) => (s.has(v) ? s : new Set(s).add(v)));
  }, []);

  const toggleSide = useCallback((v: SideView) => setSide((s) => (s === v ? null : v)), []);

  const commands: Command[] = useMemo(
    () => [
      { id: 'save', label: 'File: Save', keys: 'Ctrl+S', run: () => active && void save(active) },
      {
        id: 'saveAll',
        label: 'File: Save All',
        run: () => store.dirtyPaths().forEach((p) => void save(p)),
      },
      { id: 'close', label: 'File: Close Editor', run: () => active && store.close(active) },
      { id: 'quickOpen', label: 'Go to File…', keys: 'Ctrl+P', run: () => setPalette('files') },
      ...activities.map((a) => ({
        id: `view.${a.id}`,
        label: `View: Show ${a.label}`,
        keys: a.keys,
        run: () => setSide(a.id),
      })),
      {
        id: 'terminal',
        label: 'View: Toggle Terminal',
        keys: 'Ctrl+`',
        run: () => openBottom(bottom === 'terminal' ? null : 'terminal'),
      },
      { id: 'logs', label: 'View: Show Dev Server Logs', run: () => openBottom('logs') },
      {
        id: 'view.infrastructure',
        label: 'View: Show Infrastructure',
        run: () => setSide('infrastructure'),
      },
      { id: 'preview', label: 'View: Toggle Preview', run: () => setShowPreview((p) => !p) },
      {
        id: 'history',
        label: 'File: Show History of Active File',
        run: () => active && (setHistoryPath(active), setSide('history')),
      },
      {
        id: 'theme',
        label: `Preferences: ${theme === 'dark' ? 'Light' : 'Dark'} Theme`,
        run: () => setTheme(theme === 'dark' ? 'light' : 'dark'),
      },
      { id: 'start', label: 'Container: Start', run: () => void containerAction('start') },
      { id: 'stop', label: 'Container: Stop', run: () => void containerAction('stop') },
      { id: 'restart', label: 'Container: Restart', run: () => void containerAction('restart') },
      { id: 'rebuild', label: 'Container: Rebuild', run: () => void containerAction('rebuild') },
      { id: 'projects', label: 'Go to Projects', run: () => navigate('/') },
      {
        id: 'logout',
        label: 'Account: Sign Out',
        run: () => {
          const n = drafts.count();
          if (
            !n ||
            window.confirm(
              `${n} file${n === 1 ? ' has' : 's have'} unsaved changes. They stay on this device for you alone. Sign out?`,
            )
          )
            void api.logout();
        },
      },
    ],
    [active, api, bottom, containerAction, drafts, openBottom, save, setTheme, store, theme],
  );

  // VS Code's shortcuts, caught before Monaco sees them.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (!mod) return;
      const k = e.key.toLowerCase();
      let handled = true;
      if (k === 'p' && e.shiftKey) setPalette('commands');
      else if (k === 'p' && !e.altKey) setPalette('files');
      else if (k === 's' && !e.shiftKey) {
        if (e.altKey) store.dirtyPaths().forEach((p) => void save(p));
        else if (store.snapshot().active) void save(store.snapshot().active!);
      } else if (k === '`' || e.code === 'Backquote')
        openBottom(bottom === 'terminal' ? null : 'terminal');
      else if (k === 'b' && !e.shiftKey) setSide((s) => (s ? null : 'explorer'));
      else if (k === 'e' && e.shiftKey) setSide('explorer');
      else if (k === 'f' && e.shiftKey) setSide('search');
      else if (k === 'h' && e.shiftKey) setSide('history');
      else if (k === 'a' && e.shiftKey) setSide('chat');
      else if (k === ',') setSide('settings');
      else handled = false;
      if (handled) {
        e.preventDefault();
        e.stopPropagation();
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [bottom, openBottom, save, store]);

  if (missing) {
    return (
      <div className="page">
        <main className="empty">
          <h1>Project not found</h1>
          <p>It does not exist, or you are not a member.</p>
          <button className="primary" onClick={() => navigate('/')}>
            Back to projects
          </button>
        </main>
      </div>
    );
  }

  const rawStatus =
    container?.status ??
    (containerKnown
      ? project?.status === 'creating'
        ? 'creating'
        : 'stopped'
      : project?.status === 'running'
        ? 'running'
        : (project?.status ?? 'unknown'));
  // A Stop the person asked for is "stopped", whatever exit code it ended with.
  const status =
    stopped && (rawStatus === 'error' || rawStatus === 'stopped') ? 'stopped' : rawStatus;
  const health = (container?.health as string | undefined) ?? project?.health;
  const crash = status === 'crashed' ? (container?.crash ?? null) : null;
  const crashLine = crash?.reason.replace(/^the dev server (crashed|stopped): /i, '');
  const devServerUp = status === 'running' && health !== 'starting' && health !== 'unhealthy';
  const containerUp = status === 'running' || status === 'starting' || status === 'crashed';
  const hmr = (files ?? []).some((f) => /^vite\.config\.[cm]?[jt]s$/.test(f.path));
  const historyTarget = historyPath ?? active;

  const preview = (
    <PreviewPanel
      projectId={id}
      containerStatus={status}
      health={health}
      devServerUp={devServerUp}
      crash={crash}
      stoppedByUser={stopped}
      canEdit={canEdit}
      changes={changes}
      hmr={hmr}
      onStart={() => void containerAction('start')}
      onRestart={() => void containerAction('restart')}
      onShowLogs={() => openBottom('logs')}
      onFixWithAi={fixWithAi}
    />
  );

  if (narrow) {
    return (
      <PhoneWorkbench
        projectId={id}
        name={project?.name ?? '…'}
        status={status}
        files={files}
        preview={preview}
        onBack={() => navigate('/')}
      />
    );
  }

  return (
    <div className="workbench" data-theme-mode={theme}>
      <header className="titlebar">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate('/');
          }}
        >
          <span className="brand-mark" aria-hidden="true">
            V
          </span>
        </a>
        <span className="title">{project?.name ?? '…'}</span>
        <button
          className="command-center"
          onClick={() => setPalette('files')}
          aria-label="Search files (Ctrl+P)"
        >
          <span className="row">
            <Icon name="search" /> {project?.name ?? 'Search'}
          </span>
          <kbd>Ctrl+P</kbd>
        </button>
        <div className="spacer" />
        <PresenceAvatars people={presence.people} selfId={selfId} />
        <button
          className={`ghost ${showPreview ? 'on' : ''}`}
          aria-pressed={showPreview}
          onClick={() => setShowPreview((p) => !p)}
        >
          Preview
        </button>
        <button
          className={`ghost ${bottom === 'terminal' ? 'on' : ''}`}
          aria-pressed={bottom === 'terminal'}
          onClick={() => openBottom(bottom === 'terminal' ? null : 'terminal')}
        >
          Terminal
        </button>
        <AccountMenu />
      </header>
      <div className="wb-main">
        <nav className="activity-bar" aria-label="Views">
          {activities.map((a) => (
            <button
              key={a.id}
              className={side === a.id ? 'active' : ''}
              aria-label={a.label}
              aria-pressed={side === a.id}
              title={`${a.label} (${a.keys})`}
              onClick={() => toggleSide(a.id)}
            >
              <Icon name={a.icon} size={22} />
            </button>
          ))}
          <SessionChatButton
            active={side === 'session'}
            unread={sessionChat.unread}
            onClick={() => toggleSide('session')}
          />
          <button
            className={side === 'infrastructure' ? 'active' : ''}
            aria-label="Infrastructure"
            aria-pressed={side === 'infrastructure'}
            title="Infrastructure: machines, commands, deploys"
            onClick={() => toggleSide('infrastructure')}
          >
            <Icon name="server" size={22} />
          </button>
        </nav>
        {side === 'infrastructure' && (
          <InfrastructurePanel
            projectId={id}
            role={project?.role}
            socket={socket}
            theme={theme}
            onClose={() => setSide(null)}
          />
        )}
        {side && side !== 'infrastructure' && (
          <aside
            className={`sidebar ${sidePane === 'wide' ? 'wide' : ''}`}
            style={{ width: layout.sizes[sidePane] }}
          >
            {side === 'explorer' && (
              <Explorer
                projectId={id}
                files={files}
                canEdit={canEdit}
                active={active}
                dirty={dirty}
                openBy={presence.openBy}
                pendingReview={pendingCounts}
                onOpen={(p) => openFile(p)}
                onChanged={loadFiles}
                onRenamed={(from, to) => store.renamed(from, to)}
                onDeleted={(p) => store.remoteDeleted(p)}
                onHistory={(p) => {
                  setHistoryPath(p);
                  setSide('history');
                }}
              />
            )}
            {side === 'search' && (
              <SearchPanel projectId={id} onOpen={(p, line) => openFile(p, line)} />
            )}
            {side === 'history' && (
              <HistoryPanel
                projectId={id}
                path={historyTarget}
                current={
                  historyTarget && store.get(historyTarget)
                    ? store.get(historyTarget)!.content
                    : null
                }
                canEdit={canEdit}
                theme={theme}
                onRestored={(p) => {
                  void store.remoteChanged(p, undefined);
                  loadFiles();
                }}
              />
            )}
            {side === 'chat' && (
              <ChatPanel
                projectId={id}
                canEdit={canEdit}
                onOpen={(p) => openFile(p)}
                request={aiRequest}
              />
            )}
            {side === 'session' && <SessionChatPanel chat={sessionChat} />}
            {side === 'settings' && project && (
              <SettingsPanel
                project={project}
                container={container}
                onContainerAction={(a) => void containerAction(a)}
                onShowLogs={() => openBottom('logs')}
              />
            )}
          </aside>
        )}
        {side && side !== 'infrastructure' && (
          <Splitter
            pane={sidePane}
            label="Resize the side bar"
            size={layout.sizes[sidePane]}
            grow={1}
            onResize={(n) => layout.resize(sidePane, n)}
            onReset={() => layout.reset(sidePane)}
          />
        )}
        <div className="center">
          <EditorArea
            store={store}
            docs={docs}
            active={active}
            theme={theme}
            canEdit={canEdit}
            onSave={(p) => void save(p)}
            revealLine={reveal}
            authorName={authorName}
            pending={pendingReview.byPath}
            onReviewPending={pendingReview.open}
          />
          {pendingReview.dialog}
          {bottomOpened.size > 0 && bottom && (
            <Splitter
              pane="panel"
              label="Resize the panel"
              size={layout.sizes.panel}
              grow={-1}
              onResize={(n) => layout.resize('panel', n)}
              onReset={() => layout.reset('panel')}
            />
          )}
          {bottomOpened.size > 0 && (
            <section
              className="bottom-panel"
              hidden={!bottom}
              aria-label="Panel"
              style={{ height: layout.sizes.panel }}
            >
              <div className="panel-tabs" role="tablist">
                <button
                  role="tab"
                  aria-selected={bottom === 'terminal'}
                  className={bottom === 'terminal' ? 'active' : ''}
                  onClick={() => openBottom('terminal')}
                >
                  Terminal
                </button>
                <button
                  role="tab"
                  aria-selected={bottom === 'logs'}
                  className={bottom === 'logs' ? 'active' : ''}
                  onClick={() => openBottom('logs')}
                >
                  Output
                </button>
                <div className="spacer" />
                <button className="icon" aria-label="Close panel" onClick={() => openBottom(null)}>
                  ×
                </button>
              </div>
              {bottomOpened.has('terminal') && (
                <div className="panel-body" hidden={bottom !== 'terminal'}>
                  <TerminalPanel
                    projectId={id}
                    canEdit={canEdit}
                    visible={bottom === 'terminal'}
                    up={containerUp}
                    theme={theme}
                  />
                </div>
              )}
              {bottomOpened.has('logs') && (
                <div className="panel-body" hidden={bottom !== 'logs'}>
                  <LogsView projectId={id} visible={bottom === 'logs'} />
                </div>
              )}
            </section>
          )}
        </div>
        {showPreview && (
          <Splitter
            pane="preview"
            label="Resize the preview"
            size={layout.sizes.preview}
            grow={-1}
            onResize={(n) => layout.resize('preview', n)}
            onReset={() => layout.reset('preview')}
          />
        )}
        {showPreview && (
          <aside className="right" style={{ width: layout.sizes.preview }}>
            {preview}
          </aside>
        )}
      </div>
      <footer className="statusbar" aria-label="Status bar">
        <button
          className={`status-item ${crash ? 'status-crashed' : ''}`}
          onClick={() => setSide('settings')}
          title={crash ? crash.lines.slice(-5).join('\n') : 'Container status'}
          data-testid="container-status"
        >
          <span className={`dot status-${status}`} aria-hidden="true" /> container: {status}
          {crash
            ? `: ${crashLine}`
            : health && health !== 'unknown' && status === 'running'
              ? ` (${health})`
              : ''}
        </button>
        <span className="status-item" title="Branch of work">
          <Icon name="branch" size={12} /> main
        </span>
        <span className="status-item" data-testid="connection" title="Live updates">
          {socketState === 'open'
            ? '● live'
            : socketState === 'connecting'
              ? '○ connecting…'
              : '○ offline'}
        </span>
        {dirty.size > 0 && <span className="status-item">{dirty.size} unsaved</span>}
        <div className="spacer" />
        {project && <span className="status-item">{project.role}</span>}
        {activeDoc && <span className="status-item">{languageOf(activeDoc.path)}</span>}
        <button
          className="status-item"
          onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
          aria-label="Toggle theme"
        >
          <Icon name={theme === 'dark' ? 'moon' : 'sun'} size={12} /> {theme}
        </button>
      </footer>
      {palette && (
        <CommandPalette
          key={palette}
          mode={palette}
          files={(files ?? []).map((f) => f.path)}
          commands={commands}
          onOpenFile={(p) => openFile(p)}
          onClose={() => setPalette(null)}
        />
      )}
    </div>
  );
}
