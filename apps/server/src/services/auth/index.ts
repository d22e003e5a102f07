export { AuthService, normaliseEmail } from './service.ts';
export type { PublicUser, RegisteredHook, TokenPair, AuthServiceDeps, Sealer } from './service.ts';
export { AuthStore } from './store.ts';
export { LoginRateLimiter } from './rate-limit.ts';
export type { LoginLimits } from './rate-limit.ts';
export { createRequireAuth } from './middleware.ts';
export { createAuthRoutes, UserSchema } from './routes.ts';
export { hashPassword } from './passwords.ts';
