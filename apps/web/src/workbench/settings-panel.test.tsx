import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newUser, type Browser } from '../../test/helpers.ts';
import { AppContext } from '../context.tsx';
import type { Project } from '../lib/types.ts';
import { SettingsPanel } from './settings-panel.tsx';

afterEach(cleanup);

function renderSettings(browser: Browser, project: Project) {
  const notify = vi.fn();
  render(
    <AppContext.Provider
      value={{ api: browser.api, drafts: browser.drafts, theme: 'dark', setTheme() {}, notify }}
    >
      <SettingsPanel
        project={project}
        container={null}
        onContainerAction={() => undefined}
        onShowLogs={() => undefined}
      />
    </AppContext.Provider>,
  );
  return notify;
}

describe('members settings', () => {
  it('invites an email with no account, lists it to members, and lets an admin revoke it', async () => {
    const owner = await newUser();
    const viewer = await newUser();
    const { project } = await owner.api.createProject({ name: `Invite ${Date.now()}` });
    await owner.api.addMember(project.id, viewer.email, 'viewer');
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
    const viewerProject = (await viewer.api.listProjects()).projects.find(
      (p) => p.id === project.id,
    )!;
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
    expect((await owner.api.listInvitations(project.id)).invitations).toEqual([]);
  });
});
