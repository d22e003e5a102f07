import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { clientIp } from '../../common/client-ip.ts';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
} from '../../common/router.ts';
import { text } from '../../common/text.ts';
import type { AuthService } from './service.ts';

const Password = text().min(8, 'must be at least 8 characters').max(256);

export const UserSchema = z
  .object({
    id: z.uuid(),
    email: z.email(),
    name: z.string(),
    username: z.string(),
    avatarUrl: z.string().optional(),
    createdAt: z.string(),
    lastLoginAt: z.string().optional(),
    mfaEnabled: z.boolean(),
  })
  .openapi('User');

const TokensSchema = z.object({
  token: z.string().openapi({ description: 'JWT access token, 15 minutes' }),
  refreshToken: z.string().openapi({ description: 'Opaque, single use; rotated on every refresh' }),
  expiresIn: z.number().int().openapi({ description: 'Seconds until the access token expires' }),
});

const register = createRoute({
  method: 'post',
  path: '/register',
  tags: ['auth'],
  summary: 'Create an account',
  request: {
    body: jsonBody(
      z.object({
        email: z.email().max(255),
        password: Password,
        name: text().trim().min(1).max(255),
        username: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{1,49}$/, 'letters, digits, _ . -; 2 to 50 characters')
          .optional(),
      }),
    ),
  },
  responses: {
    201: jsonResponse(z.object({ user: UserSchema }), 'The new account'),
    ...errorResponses(400, 409, 413),
  },
});

const login = createRoute({
  method: 'post',
  path: '/login',
  tags: ['auth'],
  summary: 'Sign in',
  request: {
    body: jsonBody(
      z.object({
        email: text().min(1).max(255),
        password: text().min(1).max(256),
        totp: z
          .string()
          .regex(/^\d{6}$/, 'six digits')
          .optional(),
      }),
    ),
  },
  responses: {
    200: jsonResponse(TokensSchema.extend({ user: UserSchema }), 'Signed in'),
    ...errorResponses(400, 401, 429),
  },
});

const refresh = createRoute({
  method: 'post',
  path: '/refresh',
  tags: ['auth'],
  summary: 'Rotate a refresh token',
  description:
    'The presented token stops working. Presenting an already-used token is 401 token_reused and revokes the whole session. A request that raced a concurrent rotation of the same token is 409.',
  request: { body: jsonBody(z.object({ refreshToken: text().min(1).max(200) })) },
  responses: {
    200: jsonResponse(TokensSchema, 'A new token pair'),
    ...errorResponses(400, 401, 409),
  },
});

const logout = createRoute({
  method: 'post',
  path: '/logout',
  tags: ['auth'],
  summary: 'End the session',
  security: bearerSecurity,
  request: {
    body: {
      required: false,
      content: {
        'application/json': { schema: z.object({ refreshToken: text().max(200).optional() }) },
      },
    },
  },
  responses: {
    204: { description: 'Signed out; the access token stops working at once' },
    ...errorResponses(401),
  },
});

const me = createRoute({
  method: 'get',
  path: '/me',
  tags: ['auth'],
  summary: 'The signed-in user',
  security: bearerSecurity,
  responses: {
    200: jsonResponse(z.object({ user: UserSchema }), 'The caller'),
    ...errorResponses(401),
  },
});

const mfaSetup = createRoute({
  method: 'post',
  path: '/mfa/setup',
  tags: ['auth'],
  summary: 'Start TOTP set-up',
  security: bearerSecurity,
  responses: {
    200: jsonResponse(
      z.object({ secret: z.string(), otpauthUrl: z.string() }),
      'Scan otpauthUrl, then enable',
    ),
    ...errorResponses(401, 409),
  },
});

const mfaEnable = createRoute({
  method: 'post',
  path: '/mfa/enable',
  tags: ['auth'],
  summary: 'Require TOTP at sign-in',
  security: bearerSecurity,
  request: { body: jsonBody(z.object({ code: z.string().regex(/^\d{6}$/, 'six digits') })) },
  responses: { 204: { description: 'MFA is on' }, ...errorResponses(400, 401, 409) },
});

const changePassword = createRoute({
  method: 'post',
  path: '/password',
  tags: ['auth'],
  summary: 'Change the password (ends every other session)',
  security: bearerSecurity,
  request: {
    body: jsonBody(z.object({ currentPassword: text().min(1).max(256), newPassword: Password })),
  },
  responses: { 204: { description: 'Changed' }, ...errorResponses(400, 401) },
});

/** /api/auth routes. */
export function createAuthRoutes(
  auth: AuthService,
  requireAuth: MiddlewareHandler,
  trustedProxies: readonly string[],
): OpenAPIHono {
  const app = createRouter();
  for (const path of ['/logout', '/me', '/mfa/*', '/password']) app.use(path, requireAuth);

  return app
    .openapi(register, async (c) => {
      const user = await auth.register(c.req.valid('json'));
      return c.json({ user }, 201);
    })
    .openapi(login, async (c) => {
      const body = c.req.valid('json');
      const result = await auth.login({
        email: body.email,
        password: body.password,
        ...(body.totp ? { totp: body.totp } : {}),
        ip: clientIp(c, trustedProxies),
        userAgent: c.req.header('user-agent') ?? null,
      });
      return c.json(result, 200);
    })
    .openapi(refresh, async (c) => {
      const tokens = await auth.refresh(c.req.valid('json').refreshToken, c.var.receivedAt);
      return c.json(tokens, 200);
    })
    .openapi(logout, async (c) => {
      const raw = await c.req.text();
      let refreshToken: string | undefined;
      if (raw.trim()) {
        const parsed = z
          .object({ refreshToken: text().max(200).optional() })
          .safeParse(safeJson(raw));
        refreshToken = parsed.success ? parsed.data.refreshToken : undefined;
      }
      await auth.logout(c.var.auth, refreshToken);
      return c.body(null, 204);
    })
    .openapi(me, async (c) => c.json({ user: await auth.me(c.var.auth.userId) }, 200))
    .openapi(mfaSetup, async (c) => c.json(await auth.mfaSetup(c.var.auth.userId), 200))
    .openapi(mfaEnable, async (c) => {
      await auth.mfaEnable(c.var.auth.userId, c.req.valid('json').code);
      return c.body(null, 204);
    })
    .openapi(changePassword, async (c) => {
      const { currentPassword, newPassword } = c.req.valid('json');
      await auth.changePassword(c.var.auth, currentPassword, newPassword);
      return c.body(null, 204);
    });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
