import {
  Suspense,
  lazy,
  useCallback,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
} from 'react';
import { QueryClientProvider } from '@tanstack/react-query';
import { AppContext, type AppServices, type Theme } from './context.tsx';
import { ApiConnection } from './lib/client.ts';
import { DraftStore } from './lib/drafts.ts';
import { createQueryClient } from './lib/queries.ts';
import { navigate, usePathname } from './lib/router.ts';
import { SessionStore, type SignOutReason } from './lib/session.ts';
import { AuthScreen } from './screens/auth-screen.tsx';
import { Dashboard } from './screens/dashboard.tsx';

const Wizard = lazy(() => import('./screens/wizard.tsx').then((m) => ({ default: m.Wizard })));
const Workbench = lazy(() =>
  import('./workbench/workbench.tsx').then((m) => ({ default: m.Workbench })),
);

interface Toast {
  id: number;
  message: string;
  kind: 'info' | 'error';
}

/** The IDE: sign-in gate, routes, theme and notifications. */
export function App() {
  const session = useMemo(() => new SessionStore(), []);
  const api = useMemo(() => new ApiConnection(session), [session]);
  const path = usePathname();
  const current = useSyncExternalStore(session.subscribe, () => session.get());
  // Drafts belong to the signed-in user: the next person on this browser gets their own.
  const userId = current?.user.id ?? null;
  const drafts = useMemo(() => new DraftStore(localStorage, userId), [userId]);
  // Server state is per person: the next one signing in on this browser starts with none.
  const queryClient = useMemo(() => (void userId, createQueryClient()), [userId]);
  const [signOutReason, setSignOutReason] = useState<SignOutReason | undefined>();
  const [theme, setThemeState] = useState<Theme>(
    () => (document.documentElement.dataset.theme as Theme | undefined) ?? 'dark',
  );
  const [toasts, setToasts] = useState<Toast[]>([]);

  const notify = useCallback((message: string, kind: 'info' | 'error' = 'info') => {
    const id = Math.random();
    setToasts((t) => [...t.slice(-3), { id, message, kind }]);
    setTimeout(
      () => setToasts((t) => t.filter((x) => x.id !== id)),
      kind === 'error' ? 8000 : 4000,
    );
  }, []);

  const setTheme = useCallback((t: Theme) => {
    document.documentElement.dataset.theme = t;
    localStorage.setItem('vf.theme', t);
    setThemeState(t);
    window.dispatchEvent(new CustomEvent('vf-theme', { detail: t }));
  }, []);

  useEffect(
    () =>
      session.subscribe((s, reason) => {
        if (!s && reason) setSignOutReason(reason);
        if (s) setSignOutReason(undefined);
      }),
    [session],
  );

  // Refresh the access token a minute before it expires, while the IDE is open.
  useEffect(() => {
    if (!current) return;
    const wait = Math.max(5_000, current.expiresAt - Date.now() - 60_000);
    const t = setTimeout(() => void api.refresh(), wait);
    return () => clearTimeout(t);
  }, [api, current]);

  const services: AppServices = useMemo(
    () => ({ api, drafts, theme, setTheme, notify }),
    [api, drafts, theme, setTheme, notify],
  );

  let screen;
  if (!current) {
    screen = (
      <AuthScreen
        mode={path === '/register' ? 'register' : 'login'}
        reason={signOutReason}
        hasDrafts={hasAnyDraft()}
      />
    );
  } else if (path === '/login' || path === '/register') {
    screen = <Redirect to="/" />;
  } else if (path === '/new') {
    screen = <Wizard />;
  } else {
    const m = /^\/projects\/([^/]+)(?:\/(creating))?\/?$/.exec(path);
    if (m) {
      screen = m[2] ? <Wizard progressOf={m[1]!} /> : <Workbench projectId={m[1]!} />;
    } else {
      screen = <Dashboard />;
    }
  }

  return (
    <QueryClientProvider client={queryClient}>
      <AppContext.Provider value={services}>
        <Suspense
          fallback={
            <div className="loading-screen" role="status">
              Loading…
            </div>
          }
        >
          {screen}
        </Suspense>
        <div className="toasts" role="status" aria-live="polite">
          {toasts.map((t) => (
            <div key={t.id} className={`toast toast-${t.kind}`}>
              {t.message}
            </div>
          ))}
        </div>
      </AppContext.Provider>
    </QueryClientProvider>
  );
}

/** Replaces the current route after rendering (never during it). */
function Redirect(props: { to: string }) {
  useEffect(() => navigate(props.to, { replace: true }), [props.to]);
  return null;
}

function hasAnyDraft(): boolean {
  for (let i = 0; i < localStorage.length; i++) {
    if (localStorage.key(i)?.startsWith('vf.draft:')) return true;
  }
  return false;
}
