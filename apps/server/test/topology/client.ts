// A user of the HTTP API, as a client outside the server sees it.

/** The parsed answer of one request. */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/** Sends a JSON request; `token` as the bearer. Never throws for an HTTP status. */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...opts.headers,
    },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // not JSON (metrics, HTML)
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

/** A signed-in user: access and refresh tokens. */
export interface Session {
  userId: string;
  email: string;
  token: string;
  refreshToken: string;
}

/** Registers `email` and signs in. */
export async function signUp(
  base: string,
  email: string,
  password = 'correct horse battery',
): Promise<Session> {
  const reg = await call(base, 'POST', '/api/auth/register', {
    body: { email, password, name: email.split('@')[0] },
  });
  if (reg.status !== 201)
    throw new Error(`register ${email}: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await call<{ token: string; refreshToken: string; user: { id: string } }>(
    base,
    'POST',
    '/api/auth/login',
    { body: { email, password } },
  );
  if (login.status !== 200)
    throw new Error(`login ${email}: ${login.status} ${JSON.stringify(login.body)}`);
  return {
    userId: login.body.user.id,
    email,
    token: login.body.token,
    refreshToken: login.body.refreshToken,
  };
}
