import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QueryClientProvider } from '@tanstack/react-query';
import type { Schemas } from '@vaporform/sdk';
import { addMember, createProject, newUser, type Browser } from '../../test/helpers.ts';
import { AppContext } from '../context.tsx';
import { unwrap } from '../lib/client.ts';
import { createQueryClient } from '../lib/queries.ts';
import { SettingsPanel } from './settings-panel.tsx';

afterEach(cleanup);

type Project = Schemas['Project'];
type Container = Schemas['Container'];

function renderSettings(
  browser: Browser,
  project: Project,
  container: Container | null = null,
  onContainerAction: (action: string) => void = () => undefined,
) {
  const notify = vi.fn();
  const queryClient = createQueryClient();
  const ui = (c: Container | null) => (
    <QueryClientProvider client={queryClient}>
      <AppContext.Provider
        value={{ api: browser.api, drafts: browser.drafts, theme: 'dark', setTheme() {}, notify }}
      >
        <SettingsPanel
          project={project}
          container={c}
          onContainerAction={onContainerAction}
          onShowLogs={() => undefined}
        />
      </AppContext.Provider>
    </QueryClientProvider>
  );
  const { rerender } = render(ui(container));
  return Object.assign(notify, { rerender: (c: Container | null) => rerender(ui(c)) });
}

async function setVariable(name: string, value: string): Promise<void> {
  fireEvent.change(await screen.findByLabelText('Variable name'), { target: { value: name } });
  fireEvent.change(screen.getByLabelText('Variable value'), { target: { value } });
  fireEvent.submit(screen.getByLabelText('Variable name').closest('form')!);
}

describe('members settings', () => {
  it('invites an email with no account, lists it to members, and lets an admin revoke it', async () => {
    const owner = await newUser();
    const viewer = await newUser();
    const project = await createProject(owner, { name: `Invite ${Date.now()}` });
    await addMember(owner, project.id, viewer.email, 'viewer');
    const invitee = `new${Date.now()}@example.com`;

    const notify = renderSettings(owner, project);
    fireEvent.change(await screen.findByLabelText('Member email'), {
      target: { value: invitee },
    });
    fireEvent.change(screen.getByLabelText('Role'), { target: { value: 'viewer' } });
    fireEvent.submit(screen.getByLabelText('Member email').closest('form')!);

    await waitFor(() =>
      expect(notify).toHaveBeenCalledWith(expect.stringMatching(/invitation sent/i)),
    );
    expect(notify).not.toHaveBeenCalledWith(expect.anything(), 'error');
    const row = await screen.findByTestId('invitation');
    expect(row.textContent).toContain(invitee);
    expect(row.textContent).toContain('viewer');

    // A viewer sees the pending invitation, without a Revoke button.
    cleanup();
    const { project: viewerProject } = unwrap(
      await viewer.api.client.GET('/api/projects/{id}', { params: { path: { id: project.id } } }),
    );
    renderSettings(viewer, viewerProject);
    const seen = await screen.findByTestId('invitation');
    expect(seen.textContent).toContain(invitee);
    expect(within(seen).queryByRole('button')).toBeNull();

    cleanup();
    renderSettings(owner, project);
    fireEvent.click(
      await screen.findByRole('button', { name: `Revoke the invitation of ${invitee}` }),
    );
    await waitFor(() => expect(screen.queryByTestId('invitation')).toBeNull());
    const left = unwrap(
      await owner.api.client.GET('/api/projects/{id}/invitations', {
        params: { path: { id: project.id } },
      }),
    );
    expect(left.invitations).toEqual([]);
  });
});

describe('environment settings', () => {
  it('says "Restart to apply" after a change on a running project, restarts on a click, and not when stopped', async () => {
    const owner = await newUser();
    const project = await createProject(owner, { name: `Env restart ${Date.now()}` });
    const params = { params: { path: { projectId: project.id } } };
    const { container } = unwrap(
      await owner.api.client.POST('/api/containers/{projectId}/start', params),
    );
    const actions: string[] = [];
    const running: Container = { ...container, status: 'running' };
    const notify = renderSettings(owner, project, running, (a) => actions.push(a));

    await setVariable('FEATURE_FLAG', 'on');
    const notice = await screen.findByTestId('env-restart');
    expect(notice.textContent).toMatch(/restart to apply/i);
    expect(notify).toHaveBeenCalledWith('Saved. Restart to apply it.');
    fireEvent.click(within(notice).getByRole('button', { name: 'Restart' }));
    expect(actions).toEqual(['restart']);
    await waitFor(() => expect(screen.queryByTestId('env-restart')).toBeNull());

    // A restart from elsewhere (the status bar, another member) clears it too.
    await setVariable('FEATURE_FLAG', 'off');
    await screen.findByTestId('env-restart');
    notify.rerender({ ...running, status: 'starting' });
    await waitFor(() => expect(screen.queryByTestId('env-restart')).toBeNull());

    // Stopped: the next start takes the value, nothing to restart.
    unwrap(await owner.api.client.POST('/api/containers/{projectId}/stop', params));
    notify.rerender({ ...running, status: 'stopped' });
    notify.mockClear();
    await setVariable('FEATURE_FLAG', 'again');
    await waitFor(() => expect(notify).toHaveBeenCalledWith('Saved.'));
    expect(screen.queryByTestId('env-restart')).toBeNull();
    expect(notify).not.toHaveBeenCalledWith(expect.anything(), 'error');
  });
});
