import { createContext, useContext } from 'react';
import type { ApiConnection } from './lib/client.ts';
import type { DraftStore } from './lib/drafts.ts';

/** The light/dark theme. */
export type Theme = 'dark' | 'light';

/** What every screen can reach. */
export interface AppServices {
  /** The API as the signed-in person: `api.client` is the generated client. */
  api: ApiConnection;
  drafts: DraftStore;
  theme: Theme;
  setTheme(theme: Theme): void;
  /** Shows a short message at the bottom of the window. */
  notify(message: string, kind?: 'info' | 'error'): void;
}

export const AppContext = createContext<AppServices | null>(null);

/** The app's services (inside <App>). */
export function useApp(): AppServices {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error('useApp outside <App>');
  return ctx;
}
