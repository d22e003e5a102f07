import { useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import { navigate } from '../lib/router.ts';
import { errorMessage, unwrap } from '../lib/client.ts';
import { useEscape } from '../lib/use-escape.ts';
import { Icon } from '../workbench/icons.tsx';

/** The user's name with theme switch, two-step verification set-up and sign out. */
export function AccountMenu() {
  const { api, drafts, theme, setTheme, notify } = useApp();
  const user = api.session.get()?.user;
  const [open, setOpen] = useState(false);
  const [unsaved, setUnsaved] = useState(0);
  const [mfa, setMfa] = useState<{ secret: string; otpauthUrl: string } | null>(null);
  const [code, setCode] = useState('');
  useEscape(unsaved > 0, () => setUnsaved(0));
  useEscape(mfa !== null, () => setMfa(null));

  async function startMfa() {
    setOpen(false);
    try {
      setMfa(unwrap(await api.client.POST('/api/auth/mfa/setup')));
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  async function enableMfa(e: FormEvent) {
    e.preventDefault();
    try {
      unwrap(await api.client.POST('/api/auth/mfa/enable', { body: { code } }));
      notify('Two-step verification is on');
      setMfa(null);
      setCode('');
    } catch (err) {
      notify(errorMessage(err), 'error');
    }
  }

  return (
    <div className="account">
      <button
        className="ghost"
        onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
        aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        title="Toggle theme"
      >
        <Icon name={theme === 'dark' ? 'sun' : 'moon'} />
      </button>
      <button
        className="ghost"
        aria-haspopup="menu"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
      >
        {user?.name ?? 'Account'} ▾
      </button>
      {open && (
        <div className="menu" role="menu" onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}>
          <div className="menu-head muted small">{user?.email}</div>
          <button role="menuitem" autoFocus onClick={() => (setOpen(false), navigate('/'))}>
            Projects
          </button>
          {!user?.mfaEnabled && (
            <button role="menuitem" onClick={() => void startMfa()}>
              Set up two-step verification
            </button>
          )}
          <button
            role="menuitem"
            onClick={() => {
              setOpen(false);
              // Unsaved text stays on this device for this user alone, but say so first.
              const n = drafts.count();
              if (n) setUnsaved(n);
              else void api.logout();
            }}
          >
            Sign out
          </button>
        </div>
      )}
      {unsaved > 0 && (
        <div className="modal-backdrop" role="presentation">
          <div
            className="modal"
            role="alertdialog"
            aria-modal="true"
            aria-labelledby="signout-title"
          >
            <h2 id="signout-title">Sign out with unsaved changes?</h2>
            <p>
              {unsaved} file{unsaved === 1 ? ' has' : 's have'} unsaved changes. They stay on this
              device and come back when you sign in again; nobody else signing in here sees them.
            </p>
            <div className="row end">
              <button autoFocus onClick={() => setUnsaved(0)}>
                Cancel
              </button>
              <button className="danger" onClick={() => (setUnsaved(0), void api.logout())}>
                Sign out
              </button>
            </div>
          </div>
        </div>
      )}
      {mfa && (
        <div className="modal-backdrop" role="presentation">
          <form
            className="modal"
            role="dialog"
            aria-modal="true"
            aria-labelledby="mfa-title"
            onSubmit={enableMfa}
          >
            <h2 id="mfa-title">Two-step verification</h2>
            <p>
              Add this key to your authenticator app (or open the link on your phone), then enter
              the six-digit code it shows.
            </p>
            <code className="secret">{mfa.secret}</code>
            <p className="small">
              <a href={mfa.otpauthUrl}>Open in authenticator</a>
            </p>
            <label>
              Code
              <input
                inputMode="numeric"
                pattern="\d{6}"
                maxLength={6}
                value={code}
                onChange={(e) => setCode(e.target.value.replace(/\D/g, ''))}
                autoFocus
                required
              />
            </label>
            <div className="row end">
              <button type="button" onClick={() => setMfa(null)}>
                Cancel
              </button>
              <button className="primary" type="submit">
                Turn on
              </button>
            </div>
          </form>
        </div>
      )}
    </div>
  );
}
