import { useState, type FormEvent } from 'react';
import { useApp } from '../context.tsx';
import { ApiError, unwrap } from '../lib/client.ts';
import { navigate } from '../lib/router.ts';
import type { SignOutReason } from '../lib/session.ts';

/** Sign in, create an account, and the MFA step. */
export function AuthScreen(props: {
  mode: 'login' | 'register';
  reason: SignOutReason | undefined;
  hasDrafts: boolean;
}) {
  const { api } = useApp();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const register = props.mode === 'register';

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (register)
        unwrap(await api.client.POST('/api/auth/register', { body: { email, password, name } }));
      await api.login({ email, password, ...(needTotp ? { totp } : {}) });
      if (register) navigate('/', { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required') {
        setNeedTotp(true);
        setError(needTotp ? 'That code is not valid. Try the current one.' : null);
      } else if (err instanceof ApiError && err.details && Array.isArray(err.details)) {
        setError(
          (err.details as { field: string; message: string }[])
            .map((d) => `${d.field}: ${d.message}`)
            .join('; '),
        );
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-labelledby="auth-title">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            V
          </span>
          Vaporform
        </div>
        <h1 id="auth-title">
          {needTotp ? 'Two-step verification' : register ? 'Create your account' : 'Sign in'}
        </h1>
        {props.reason === 'expired' && (
          <p className="notice" role="alert">
            Your session ended. Sign in again
            {props.hasDrafts ? ': your unsaved editor changes are kept on this device.' : '.'}
          </p>
        )}
        {!needTotp && register && (
          <label>
            Name
            <input
              name="name"
              autoComplete="name"
              value={name}
              onChange={(e) => setName(e.target.value)}
              required
            />
          </label>
        )}
        {!needTotp && (
          <>
            <label>
              Email
              <input
                name="email"
                type="email"
                autoComplete="email"
                value={email}
                onChange={(e) => setEmail(e.target.value)}
                required
                autoFocus
              />
            </label>
            <label>
              Password
              <input
                name="password"
                type="password"
                autoComplete={register ? 'new-password' : 'current-password'}
                minLength={register ? 8 : undefined}
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                required
              />
            </label>
          </>
        )}
        {needTotp && (
          <label>
            Six-digit code from your authenticator app
            <input
              name="totp"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="\d{6}"
              maxLength={6}
              value={totp}
              onChange={(e) => setTotp(e.target.value.replace(/\D/g, ''))}
              required
              autoFocus
            />
          </label>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button className="primary" type="submit" disabled={busy}>
          {busy ? 'Please wait…' : needTotp ? 'Verify' : register ? 'Create account' : 'Sign in'}
        </button>
        {!needTotp && (
          <p className="muted">
            {register ? 'Already have an account? ' : 'New to Vaporform? '}
            <a
              href={register ? '/login' : '/register'}
              onClick={(e) => {
                e.preventDefault();
                setError(null);
                navigate(register ? '/login' : '/register');
              }}
            >
              {register ? 'Sign in' : 'Create an account'}
            </a>
          </p>
        )}
      </form>
    </main>
  );
}
