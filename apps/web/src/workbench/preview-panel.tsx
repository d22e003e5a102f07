import type { Schemas } from '@vaporform/sdk';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import { errorMessage, unwrap } from '../lib/client.ts';
import { Icon } from './icons.tsx';

const devices = [
  { id: 'full', label: 'Fit', width: null },
  { id: 'mobile', label: 'Mobile', width: 375 },
  { id: 'tablet', label: 'Tablet', width: 768 },
  { id: 'desktop', label: 'Desktop', width: 1280 },
] as const;

/** Saves closer together than this make one reload (an `npm install` writes several files). */
const RELOAD_COALESCE_MS = 40;

/** How the dev server crashed: a one-line reason and its last log lines. */
type CrashReport = Pick<NonNullable<Schemas['Container']['crash']>, 'reason' | 'lines'>;

/**
 * The running app in an iframe on its own preview origin. The preview-token exchange is done
 * for the user (the token URL sets the preview cookie, then redirects); address bar, reload,
 * open in a new tab, device widths, and a clear state when the dev server is down or crashed.
 *
 * It refreshes itself after a save (`changes` counts them): at once (the preview proxy waits a
 * moment for a dev server its watcher is restarting), and again once a restart is over (the
 * first load may have reached the old process). HMR stacks update the page in place: only the
 * restart reloads them.
 */
export function PreviewPanel(props: {
  projectId: string;
  containerStatus: string;
  health?: string;
  devServerUp: boolean;
  crash: CrashReport | null;
  /** Stopped because someone asked (not a failure). */
  stoppedByUser: boolean;
  canEdit: boolean;
  /** Files saved so far (by anyone): each new one asks for a refresh. */
  changes: number;
  /** The stack updates the page itself (Vite HMR): reload only after a restart. */
  hmr: boolean;
  onStart(): void;
  onRestart(): void;
  onShowLogs(): void;
  onFixWithAi(crash: CrashReport): void;
}) {
  const { api } = useApp();
  /** A short-lived preview token and the preview's URL carrying it. @throws ApiError */
  const previewToken = useCallback(
    async () =>
      unwrap(
        await api.client.POST('/api/projects/{id}/preview-token', {
          params: { path: { id: props.projectId } },
        }),
      ),
    [api, props.projectId],
  );
  const [origin, setOrigin] = useState<string | null>(null);
  const [src, setSrc] = useState<string | null>(null);
  const [address, setAddress] = useState('/');
  const [device, setDevice] = useState<(typeof devices)[number]['id']>('full');
  const [error, setError] = useState<string | null>(null);
  const [nonce, setNonce] = useState(0);
  const frame = useRef<HTMLIFrameElement>(null);
  /**
   * The frame has loaded the token URL, so the preview cookie is set. Until then a reload must
   * exchange a new token: the plain address would answer 401 (the first exchange may have been
   * cut short by this reload, or by the frame leaving the page while the dev server restarted).
   */
  const signedIn = useRef(false);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const restarting = props.containerStatus === 'starting' || props.health === 'starting';

  const connect = useCallback(
    async (path: string) => {
      try {
        const t = await previewToken();
        const url = new URL(t.url);
        signedIn.current = false;
        setOrigin(url.origin);
        setAddress(path || '/');
        setSrc(url.toString());
        setError(null);
      } catch (err) {
        setError(errorMessage(err));
      }
    },
    [previewToken],
  );

  // The panel shows the app as soon as the dev server answers, and again after each restart.
  const wasUp = useRef(false);
  useEffect(() => {
    const up = props.devServerUp;
    if (up && !wasUp.current) {
      if (origin) reload();
      else void connect('/');
    }
    wasUp.current = up;
    // On transitions only.
  }, [props.devServerUp]);

  // A save: refresh now (a restart's end refreshes again, above).
  useEffect(() => {
    if (!props.changes || props.hmr) return;
    clearTimeout(pending.current);
    pending.current = setTimeout(() => {
      if (wasUp.current) reload();
    }, RELOAD_COALESCE_MS);
    // Once per save.
  }, [props.changes]);

  useEffect(() => () => clearTimeout(pending.current), []);

  function go(e: FormEvent) {
    e.preventDefault();
    reload();
  }

  function reload() {
    clearTimeout(pending.current);
    if (!origin || !signedIn.current) {
      void connect(address);
      return;
    }
    // The preview cookie is set: load the address again on the preview origin.
    const path = address.startsWith('/') ? address : `/${address}`;
    setSrc(origin + path);
    setNonce((n) => n + 1);
  }

  async function openInTab() {
    try {
      const t = await previewToken();
      window.open(t.url, '_blank', 'noopener');
    } catch (err) {
      setError(errorMessage(err));
    }
  }

  const width = devices.find((d) => d.id === device)?.width ?? null;

  return (
    <section className="preview" aria-label="Preview">
      <div className="preview-bar" data-restarting={restarting || undefined}>
        <button className="icon" title="Reload" aria-label="Reload preview" onClick={reload}>
          <Icon name="refresh" />
        </button>
        <form onSubmit={go} className="address">
          <span className="muted small origin">{origin ?? 'preview'}</span>
          <input
            aria-label="Preview address"
            value={address}
            onChange={(e) => setAddress(e.target.value)}
          />
        </form>
        {restarting && src && (
          <span className="muted small" role="status">
            restarting…
          </span>
        )}
        <select
          aria-label="Device width"
          value={device}
          onChange={(e) => setDevice(e.target.value as typeof device)}
        >
          {devices.map((d) => (
            <option key={d.id} value={d.id}>
              {d.label}
              {d.width ? ` (${d.width}px)` : ''}
            </option>
          ))}
        </select>
        <button
          className="icon"
          title="Open in a new tab"
          aria-label="Open preview in a new tab"
          onClick={() => void openInTab()}
        >
          <Icon name="external" />
        </button>
      </div>
      <div className="preview-stage">
        {props.containerStatus === 'crashed' ? (
          <div className="preview-down preview-crash" role="alert" data-testid="preview-crash">
            <h3>The dev server crashed</h3>
            <p className="crash-reason">{props.crash?.reason ?? 'It stopped unexpectedly.'}</p>
            {props.crash && props.crash.lines.length > 0 && (
              <pre className="crash-log" aria-label="Last log lines">
                {props.crash.lines.join('\n')}
              </pre>
            )}
            <p className="muted small">
              Save a fix and it starts again by itself, or let the assistant find the cause.
            </p>
            <div className="row">
              {props.canEdit && (
                <button
                  className="primary"
                  onClick={() =>
                    props.onFixWithAi(
                      props.crash ?? { reason: 'The dev server crashed', lines: [] },
                    )
                  }
                >
                  <Icon name="sparkle" /> Fix with AI
                </button>
              )}
              {props.canEdit && <button onClick={props.onRestart}>Restart</button>}
              <button onClick={props.onShowLogs}>Show logs</button>
            </div>
          </div>
        ) : !props.devServerUp && !(restarting && src) ? (
          <div className="preview-down" role="status" data-testid="preview-down">
            {props.containerStatus === 'starting' || props.containerStatus === 'creating' ? (
              <>
                <h3>Starting the dev server…</h3>
                <p className="muted">The preview appears as soon as it answers.</p>
              </>
            ) : props.containerStatus === 'running' ? (
              <>
                <h3>The dev server does not answer</h3>
                <p className="muted">It runs, but nothing listens on its port yet.</p>
              </>
            ) : props.stoppedByUser || props.containerStatus === 'stopped' ? (
              <>
                <h3>The dev server is stopped</h3>
                <p className="muted">Start it to see your app here.</p>
              </>
            ) : (
              <>
                <h3>The dev server is not running</h3>
                <p className="muted">
                  Container: <strong>{props.containerStatus}</strong>. Start it to see your app
                  here.
                </p>
              </>
            )}
            <div className="row">
              {props.canEdit && !['starting', 'creating'].includes(props.containerStatus) && (
                <button className="primary" onClick={props.onStart}>
                  Start dev server
                </button>
              )}
              <button onClick={props.onShowLogs}>Show logs</button>
            </div>
          </div>
        ) : error ? (
          <div className="preview-down" role="alert">
            <h3>The preview is not available</h3>
            <p className="muted">{error}</p>
            <div className="row">
              <button onClick={reload}>Try again</button>
              <button onClick={props.onShowLogs}>Show logs</button>
            </div>
          </div>
        ) : src ? (
          <iframe
            key={nonce}
            ref={frame}
            title="App preview"
            src={src}
            onLoad={() => (signedIn.current = true)}
            style={width ? { width, maxWidth: '100%' } : undefined}
            sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-modals allow-downloads"
            data-testid="preview-frame"
          />
        ) : (
          <div className="preview-down muted" role="status">
            Connecting to the preview…
          </div>
        )}
      </div>
    </section>
  );
}
