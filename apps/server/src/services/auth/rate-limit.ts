import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { errors } from '../../common/errors.ts';

export interface LoginLimits {
  perIp: number;
  perAccount: number;
  windowSeconds: number;
}

/**
 * Login attempts per client IP and per account. Each attempt costs a point from both; a
 * successful login refunds the account's points. Past either limit: 429 with Retry-After.
 */
export class LoginRateLimiter {
  readonly #byIp: RateLimiterAbstract;
  readonly #byAccount: RateLimiterAbstract;

  constructor(limits: LoginLimits, redis?: Redis) {
    const make = (keyPrefix: string, points: number): RateLimiterAbstract =>
      redis
        ? new RateLimiterRedis({
            storeClient: redis,
            keyPrefix,
            points,
            duration: limits.windowSeconds,
          })
        : new RateLimiterMemory({ keyPrefix, points, duration: limits.windowSeconds });
    this.#byIp = make('vf_login_ip', limits.perIp);
    this.#byAccount = make('vf_login_account', limits.perAccount);
  }

  /** @throws AppError rate_limited when either budget is spent. */
  async consume(ip: string, email: string): Promise<void> {
    try {
      await Promise.all([this.#byIp.consume(ip), this.#byAccount.consume(email)]);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw errors.rateLimited(err.msBeforeNext / 1000);
      throw err;
    }
  }

  /** Clears the account's failures after a successful login. */
  async reset(email: string): Promise<void> {
    await this.#byAccount.delete(email);
  }
}
