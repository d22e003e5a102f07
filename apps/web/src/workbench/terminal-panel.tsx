import { useEffect, useRef, useState, type MouseEvent } from 'react';
import { useApp } from '../context.tsx';
import { socketUrl } from '../lib/project-socket.ts';

/**
 * Terminal tabs (xterm.js, loaded on first use) on `WS /api/projects/:id/terminal`. While the
 * container is not up (`up` false) they wait quietly and connect when it starts.
 */
export function TerminalPanel(props: {
  projectId: string;
  canEdit: boolean;
  visible: boolean;
  /** The container runs (a shell can be opened). */
  up: boolean;
  theme: 'dark' | 'light';
}) {
  const [tabs, setTabs] = useState<number[]>([1]);
  const [active, setActive] = useState(1);
  const next = useRef(2);

  function add() {
    const id = next.current++;
    setTabs((t) => [...t, id]);
    setActive(id);
  }

  function close(id: number) {
    setTabs((t) => {
      const rest = t.filter((x) => x !== id);
      if (active === id && rest.length) setActive(rest[rest.length - 1]!);
      return rest;
    });
  }

  if (!props.canEdit) {
    return <p className="muted small pad">Viewers cannot open a terminal in this project.</p>;
  }

  return (
    <div className="terminal-panel">
      <div className="subtabs" role="tablist" aria-label="Terminals">
        {/* Buttons here never take focus from a click: Space or Enter typed next belongs to
            the terminal, not to "+" (which would open another one). */}
        {tabs.map((id, i) => (
          <span key={id} className={`subtab ${id === active ? 'active' : ''}`}>
            <button
              role="tab"
              aria-selected={id === active}
              onMouseDown={keepFocus}
              onClick={() => setActive(id)}
            >
              Terminal {i + 1}
            </button>
            <button
              className="icon"
              aria-label={`Close terminal ${i + 1}`}
              onMouseDown={keepFocus}
              onClick={() => close(id)}
            >
              ×
            </button>
          </span>
        ))}
        <button
          className="icon"
          aria-label="New terminal"
          title="New terminal"
          onMouseDown={keepFocus}
          onClick={add}
        >
          +
        </button>
      </div>
      {tabs.map((id) => (
        <TerminalView
          key={id}
          projectId={props.projectId}
          visible={props.visible && id === active}
          up={props.up}
          theme={props.theme}
        />
      ))}
      {tabs.length === 0 && (
        <p className="muted small pad">
          No terminal open.{' '}
          <button className="linklike" onClick={add}>
            Open one
          </button>
        </p>
      )}
    </div>
  );
}

/** A mouse press on a tab-bar button leaves focus where it was (in the terminal). */
function keepFocus(e: MouseEvent) {
  e.preventDefault();
}

type Status = 'loading' | 'waiting' | 'connecting' | 'open' | 'closed' | 'ended';

/** Close codes after which reconnecting cannot help (signed out, access removed). */
const FINAL_CODES = new Set([4401, 4403, 4404]);

/**
 * One xterm on a terminal WebSocket: the project's (`WS /api/projects/:id/terminal`) unless
 * `path` names another (a machine's shell); `waiting` is what it says while `up` is false.
 */
export function TerminalView(props: {
  projectId: string;
  visible: boolean;
  up: boolean;
  theme: 'dark' | 'light';
  path?: string;
  waiting?: string;
}) {
  const { api } = useApp();
  const host = useRef<HTMLDivElement>(null);
  const fitRef = useRef<(() => void) | null>(null);
  const [status, setStatus] = useState<Status>('loading');
  const [reason, setReason] = useState<string | null>(null);
  const termRef = useRef<{ options: { theme?: unknown }; focus(): void } | null>(null);
  const upRef = useRef(props.up);
  upRef.current = props.up;
  const connectRef = useRef<(() => void) | null>(null);
  const socketRef = useRef<WebSocket | null>(null);

  useEffect(() => {
    let disposed = false;
    let ws: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let cleanup: (() => void) | undefined;

    void Promise.all([
      import('@xterm/xterm'),
      import('@xterm/addon-fit'),
      import('@xterm/xterm/css/xterm.css'),
    ]).then(([{ Terminal }, { FitAddon }]) => {
      if (disposed || !host.current) return;
      const term = new Terminal({
        cursorBlink: true,
        fontSize: 13,
        fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
        theme: xtermTheme(props.theme),
        scrollback: 5000,
      });
      termRef.current = term;
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.open(host.current);
      const doFit = () => {
        if (!host.current || host.current.offsetParent === null) return;
        try {
          fit.fit();
        } catch {
          // Not laid out yet.
        }
      };
      fitRef.current = doFit;
      doFit();
      const encoder = new TextEncoder();
      const sendResize = () => {
        if (ws?.readyState === WebSocket.OPEN)
          ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
      };
      term.onData((d) => {
        if (ws?.readyState === WebSocket.OPEN) ws.send(encoder.encode(d));
      });
      term.onResize(sendResize);
      const observer = new ResizeObserver(() => doFit());
      observer.observe(host.current);

      const connect = async () => {
        if (disposed) return;
        clearTimeout(retry);
        if (!upRef.current) {
          // Nothing to attach to: wait quietly until the container runs.
          setStatus('waiting');
          return;
        }
        if (ws && ws.readyState <= WebSocket.OPEN) return;
        setStatus('connecting');
        const token = await api.accessToken().catch(() => null);
        if (disposed) return;
        if (!token) {
          setStatus('closed');
          setReason('Signed out');
          return;
        }
        const socket = new WebSocket(
          socketUrl(api, props.path ?? `/api/projects/${props.projectId}/terminal`, token),
        );
        socket.binaryType = 'arraybuffer';
        ws = socket;
        socketRef.current = socket;
        socket.onopen = () => {
          attempt = 0;
          setStatus('open');
          setReason(null);
          doFit();
          sendResize();
        };
        socket.onmessage = (m) => {
          if (typeof m.data === 'string') term.write(m.data);
          else term.write(new Uint8Array(m.data as ArrayBuffer));
        };
        socket.onclose = (e) => {
          if (ws !== socket || disposed) return;
          ws = null;
          setReason(e.reason || null);
          if (FINAL_CODES.has(e.code)) {
            setStatus('ended');
            return;
          }
          if (!upRef.current) {
            setStatus('waiting');
            return;
          }
          setStatus('closed');
          // Reconnect with backoff, bounded.
          const wait = Math.min(10_000, 1000 * 2 ** attempt++);
          retry = setTimeout(() => void connect(), wait);
        };
      };
      connectRef.current = () => void connect();
      void connect();
      if (props.visible) term.focus();
      cleanup = () => {
        observer.disconnect();
        term.dispose();
      };
    });
    return () => {
      disposed = true;
      clearTimeout(retry);
      ws?.close();
      cleanup?.();
    };
  }, [api, props.projectId, props.path]);

  useEffect(() => {
    if (props.up) connectRef.current?.();
    else if (socketRef.current?.readyState !== WebSocket.OPEN)
      setStatus((s) => (s === 'loading' ? s : 'waiting'));
  }, [props.up]);

  useEffect(() => {
    if (!props.visible) return;
    requestAnimationFrame(() => {
      fitRef.current?.();
      termRef.current?.focus();
    });
  }, [props.visible]);

  useEffect(() => {
    if (termRef.current) termRef.current.options.theme = xtermTheme(props.theme);
  }, [props.theme]);

  return (
    <div className="terminal-view" hidden={!props.visible} data-status={status}>
      {status !== 'open' && (
        <div className="terminal-status muted small" role="status">
          {status === 'loading'
            ? 'Loading terminal…'
            : status === 'waiting'
              ? (props.waiting ??
                'The container is not running: the terminal connects when it starts.')
              : status === 'connecting'
                ? 'Connecting…'
                : status === 'ended'
                  ? `Closed${reason ? ` (${reason})` : ''}.`
                  : `Disconnected${reason ? ` (${reason})` : ''}: reconnecting…`}
        </div>
      )}
      <div ref={host} className="xterm-host" data-testid="terminal" />
    </div>
  );
}

function xtermTheme(theme: 'dark' | 'light') {
  return theme === 'dark'
    ? { background: '#1e1e1e', foreground: '#d4d4d4', cursor: '#d4d4d4' }
    : {
        background: '#ffffff',
        foreground: '#1f2328',
        cursor: '#1f2328',
        selectionBackground: '#add6ff',
      };
}
