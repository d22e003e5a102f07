import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import { Icon } from './icons.tsx';

const devices = [
  { id: 'full', label: 'Fit', width: null },
  { id: 'mobile', label: 'Mobile', width: 375 },
  { id: 'tablet', label: 'Tablet', width: 768 },
  { id: 'desktop', label: 'Desktop', width: 1280 },
] as const;

/**
 * The running app in an iframe on its own preview origin. The preview-token exchange is done
 * for the user (the token URL sets the preview cookie, then redirects); address bar, reload,
 * open in a new tab, device widths, and a clear state when the dev server is down.
 */
export function PreviewPanel(props: {
  projectId: string;
  containerStatus: string;
  devServerUp: boolean;
  canEdit: boolean;
  onStart(): void;
  onShowLogs(): void;
}) {
  const { api } = useApp();
  const [origin, setOrigin] = useState<string | null>(null);
  const [src, setSrc] = useState<string | null>(null);
  const [address, setAddress] = useState('/');
  const [device, setDevice] = useState<(typeof devices)[number]['id']>('full');
  const [error, setError] = useState<string | null>(null);
  const [nonce, setNonce] = useState(0);
  const frame = useRef<HTMLIFrameElement>(null);

  const connect = useCallback(
    async (path: string) => {
      try {
        const t = await api.previewToken(props.projectId);
        const url = new URL(t.url);
        setOrigin(url.origin);
        setAddress(path || '/');
        setSrc(url.toString());
        setError(null);
      } catch (err) {
        setError((err as Error).message);
      }
    },
    [api, props.projectId],
  );

  useEffect(() => {
    if (props.devServerUp) void connect('/');
  }, [props.devServerUp, connect]);

  function go(e: FormEvent) {
    e.preventDefault();
    const path = address.startsWith('/') ? address : `/${address}`;
    if (origin) setSrc(origin + path);
    setNonce((n) => n + 1);
  }

  function reload() {
    if (!origin) {
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
      const t = await api.previewToken(props.projectId);
      window.open(t.url, '_blank', 'noopener');
    } catch (err) {
      setError((err as Error).message);
    }
  }

  const width = devices.find((d) => d.id === device)?.width ?? null;

  return (
    <section className="preview" aria-label="Preview">
      <div className="preview-bar">
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
        {!props.devServerUp ? (
          <div className="preview-down" role="status" data-testid="preview-down">
            <h3>The dev server is not running</h3>
            <p className="muted">
              Container: <strong>{props.containerStatus}</strong>.{' '}
              {props.containerStatus === 'starting' || props.containerStatus === 'creating'
                ? 'It is starting; the preview appears when the server answers.'
                : 'Start it to see your app here.'}
            </p>
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
