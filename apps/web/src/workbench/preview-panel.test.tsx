import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { createProject, newUser, type Browser } from '../../test/helpers.ts';
import { AppContext } from '../context.tsx';
import { PreviewPanel } from './preview-panel.tsx';

afterEach(cleanup);

/** The preview panel of a running dev server; `rerender(changes)` reports saves. */
function renderPreview(browser: Browser, projectId: string) {
  const ui = (changes: number) => (
    <AppContext.Provider
      value={{
        api: browser.api,
        drafts: browser.drafts,
        theme: 'dark',
        setTheme() {},
        notify() {},
      }}
    >
      <PreviewPanel
        projectId={projectId}
        containerStatus="running"
        devServerUp
        crash={null}
        stoppedByUser={false}
        canEdit
        changes={changes}
        hmr={false}
        onStart={() => undefined}
        onRestart={() => undefined}
        onShowLogs={() => undefined}
        onFixWithAi={() => undefined}
      />
    </AppContext.Provider>
  );
  const { rerender } = render(ui(0));
  return (changes: number) => rerender(ui(changes));
}

const frameSrc = () => screen.getByTestId('preview-frame').getAttribute('src') ?? '';
const isTokenUrl = (src: string) => new URL(src).pathname === '/__vaporform/preview-auth';

describe('the preview panel', () => {
  it('exchanges a new token when a save comes before the first one has set the cookie', async () => {
    const owner = await newUser();
    const project = await createProject(owner, { name: `Preview ${Date.now()}` });
    const saved = renderPreview(owner, project.id);
    await waitFor(() => expect(isTokenUrl(frameSrc())).toBe(true));
    const first = frameSrc();

    // A save while the frame is still on its way through the token URL: the plain address
    // would answer 401 (no cookie yet), so the reload takes a fresh token.
    saved(1);
    await waitFor(() => expect(frameSrc()).not.toBe(first));
    expect(isTokenUrl(frameSrc())).toBe(true);

    // Once the token URL has loaded (the cookie is set), a save reloads the app's own address.
    const origin = new URL(frameSrc()).origin;
    act(() => void fireEvent.load(screen.getByTestId('preview-frame')));
    saved(2);
    await waitFor(() => expect(frameSrc()).toBe(`${origin}/`));
  });
});
