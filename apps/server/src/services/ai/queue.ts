import PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from '../../common/logger.ts';

/** The pg-boss queue of POST /api/claude/process requests. */
export const aiQueueName = 'claude-processing';

/** Runs one delivery of a request; throwing hands the job back to pg-boss for a retry. */
export type JobHandler = (requestId: string, jobId: string) => Promise<void>;

/** Called periodically: hands back requests whose worker went silent (returns their job ids). */
export type LeaseSweeper = () => Promise<string[]>;

/**
 * A durable, at-least-once queue in the server's own PostgreSQL (pg-boss, schema `pgboss`),
 * shared by every instance. pg-boss redelivers a job whose handler threw; the sweeper makes it
 * redeliver jobs whose worker died (its lease ran out) without waiting for the job to expire.
 */
export class AiQueue {
  readonly #boss: PgBoss;
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #attempts: number;
  readonly #sweepMs: number;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #started = false;

  constructor(deps: { pool: pg.Pool; log: Logger; attempts: number; leaseSeconds: number }) {
    this.#pool = deps.pool;
    this.#log = deps.log;
    this.#attempts = deps.attempts;
    this.#sweepMs = Math.max(500, (deps.leaseSeconds * 1000) / 2);
    this.#boss = new PgBoss({
      db: { executeSql: (text, values) => deps.pool.query(text, values) },
      schema: 'pgboss',
      supervise: true,
      schedule: false,
      migrate: true,
      maintenanceIntervalSeconds: 60,
    });
    this.#boss.on('error', (err: Error) => this.#log.warn({ err: err.message }, 'job queue error'));
  }

  /** Installs pg-boss's schema (first time), creates the queue and starts working on it. */
  async start(handler: JobHandler, sweep: LeaseSweeper): Promise<void> {
    // Instances starting together would race on pg-boss's schema and queue DDL (PostgreSQL
    // fails one with "deadlock detected"): one sets up at a time, under a transaction-scoped
    // advisory lock held on a connection of its own while pg-boss works on the others.
    const lock = await this.#pool.connect();
    try {
      await lock.query('BEGIN');
      await lock.query("SELECT pg_advisory_xact_lock(hashtext('vaporform:pgboss:setup'))");
      await this.#boss.start();
      this.#started = true;
      await this.#boss.createQueue(aiQueueName, {
        name: aiQueueName,
        // One more delivery than attempts: the last one records the failure for good.
        retryLimit: this.#attempts,
        retryDelay: 1,
        retryBackoff: false,
        // A backstop only: dead workers are found through their lease long before this.
        expireInSeconds: 60 * 60,
      });
    } finally {
      await lock.query('COMMIT').catch(() => undefined);
      lock.release();
    }
    await this.#boss.work<{ requestId: string }>(
      aiQueueName,
      { pollingIntervalSeconds: 0.5, batchSize: 1 },
      async ([job]) => {
        if (job) await handler(job.data.requestId, job.id);
      },
    );
    this.#sweeper = setInterval(() => void this.#sweep(sweep), this.#sweepMs);
    this.#sweeper.unref();
    void this.#sweep(sweep);
  }

  /** Queues a request; returns the job id. */
  async send(requestId: string): Promise<string> {
    const id = await this.#boss.send(aiQueueName, { requestId });
    if (!id) throw new Error('the job queue refused the request');
    return id;
  }

  async #sweep(sweep: LeaseSweeper): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      const jobIds = await sweep();
      for (const jobId of jobIds) {
        // Active → retry (pg-boss counts the delivery); a job already failed stays failed.
        await this.#boss.fail(aiQueueName, jobId, { message: 'worker lost its lease' });
        this.#log.warn({ jobId }, 'AI job lost its worker; queued again');
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'AI lease sweep failed');
    } finally {
      this.#sweeping = false;
    }
  }

  /** Stops polling and waits (bounded) for jobs in hand; leaves the pool open. */
  async stop(): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (!this.#started) return;
    this.#started = false;
    await this.#boss.stop({ graceful: true, wait: true, close: false, timeout: 10_000 });
  }
}
