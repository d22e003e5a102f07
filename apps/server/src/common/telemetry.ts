import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type pg from 'pg';
import { requestIdScope, type Logger } from './logger.ts';

/** Traces of this process, exported over OTLP/HTTP. */
export interface Telemetry {
  tracer: Tracer;
  /** Makes every request through `app.fetch` a server span (joined to logs by request id). */
  traceApp(app: { fetch: FetchHandler }): void;
  /** Makes every query on the pool's clients a client span, child of the request's span. */
  tracePool(pool: pg.Pool): void;
  /** Sends what is buffered and stops. */
  shutdown(): Promise<void>;
}

type FetchHandler = (request: Request, ...rest: never[]) => Response | Promise<Response>;

/**
 * Starts tracing when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set; the OTLP
 * exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables itself (headers, timeout), and
 * `OTEL_SERVICE_NAME` names the service (default `vaporform`). Spans: one per HTTP request
 * (`vaporform.request_id` = the `x-request-id` every log line of the request carries) and one
 * per SQL statement under it; Docker, Terraform and AI provider calls through `withSpan` /
 * `traceMethods`.
 * @returns undefined when no endpoint is set (nothing is registered then).
 */
export function startTelemetry(env: NodeJS.ProcessEnv, log: Logger): Telemetry | undefined {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  // A span started inside a request is that request's child, across awaits.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'vaporform' }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({
          url:
            env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
            `${env.OTEL_EXPORTER_OTLP_ENDPOINT!.replace(/\/+$/, '')}/v1/traces`,
        }),
        scheduledDelayMillis: Number(env.OTEL_BSP_SCHEDULE_DELAY) || 5000,
      }),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  const tracer = provider.getTracer('vaporform');
  log.info('OpenTelemetry traces are exported over OTLP');
  return {
    tracer,
    traceApp(app) {
      const inner = app.fetch;
      app.fetch = ((request: Request, ...rest: never[]) =>
        traceRequest(tracer, request, () => inner(request, ...rest))) as FetchHandler;
    },
    tracePool(pool) {
      const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
      (pool as unknown as { query: unknown }).query = (...args: unknown[]) =>
        traced(tracer, args, query);
      pool.on('connect', (client) => {
        const clientQuery = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as unknown as { query: unknown }).query = (...args: unknown[]) =>
          traced(tracer, args, clientQuery);
      });
    },
    async shutdown() {
      await provider.shutdown().catch(() => undefined);
    },
  };
}

async function traceRequest(
  tracer: Tracer,
  request: Request,
  handle: () => Response | Promise<Response>,
): Promise<Response> {
  const url = new URL(request.url);
  const span = tracer.startSpan(`${request.method} ${url.pathname}`, {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': request.method,
      'url.path': url.pathname,
      'server.address': url.hostname,
    },
  });
  return context.with(trace.setSpan(context.active(), span), async () => {
    try {
      const response = await handle();
      span.setAttribute('http.response.status_code', response.status);
      const requestId = response.headers.get('x-request-id');
      if (requestId) span.setAttribute('vaporform.request_id', requestId);
      if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      return response;
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A promise-style `query(text | config, values?)` as a span; callback-style calls pass through. */
function traced(tracer: Tracer, args: unknown[], query: (...args: unknown[]) => unknown): unknown {
  const first = args[0];
  const text =
    typeof first === 'string'
      ? first
      : typeof (first as { text?: unknown } | null)?.text === 'string'
        ? (first as { text: string }).text
        : undefined;
  if (text === undefined || typeof args[args.length - 1] === 'function') return query(...args);
  const attributes: Attributes = {
    'db.system.name': 'postgresql',
    'db.query.text': text.length > 1000 ? `${text.slice(0, 1000)}…` : text,
  };
  const span = tracer.startSpan(text.trim().split(/\s+/, 1)[0]!.toUpperCase(), {
    kind: SpanKind.CLIENT,
    attributes,
  });
  const result = query(...args) as Promise<unknown>;
  result.then(
    () => span.end(),
    (err: unknown) => {
      fail(span, err);
      span.end();
    },
  );
  return result;
}

function fail(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : '' });
}

/** An open span of `startSpan`: ended once, with the error that failed it if any. */
export interface OpenSpan {
  end(error?: unknown, attributes?: Attributes): void;
}

/**
 * Starts a client span `name` under the active one (a request's, across awaits), carrying the
 * request id of the request it runs for. Without `startTelemetry` the global tracer is a no-op.
 */
export function startSpan(name: string, attributes: Attributes = {}): OpenSpan {
  const requestId = requestIdScope.getStore();
  const span = trace.getTracer('vaporform').startSpan(name, {
    kind: SpanKind.CLIENT,
    attributes: { ...attributes, ...(requestId ? { 'vaporform.request_id': requestId } : {}) },
  });
  let ended = false;
  return {
    end(error, more) {
      if (ended) return;
      ended = true;
      if (more) span.setAttributes(more);
      if (error !== undefined) fail(span, error);
      span.end();
    },
  };
}

/** Runs `run` as a span `name` (see `startSpan`), ending it when the promise settles. */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  run: () => Promise<T>,
): Promise<T> {
  const span = startSpan(name, attributes);
  try {
    const result = await run();
    span.end();
    return result;
  } catch (err) {
    span.end(err);
    throw err;
  }
}

/**
 * `target` with each of `methods` as a span `<prefix> <method>` (e.g. `docker start`): the one
 * wrapper around a client's call sites. Methods run on `target` itself (private fields work).
 */
export function traceMethods<T extends object>(
  target: T,
  prefix: string,
  methods: readonly (keyof T & string)[],
  attributes: Attributes = {},
): T {
  const traced = new Set<string>(methods);
  return new Proxy(target, {
    get(obj, key) {
      const value = Reflect.get(obj, key, obj) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof key !== 'string' || !traced.has(key)) return value.bind(obj);
      return (...args: unknown[]) =>
        withSpan(`${prefix} ${key}`, attributes, () =>
          Promise.resolve((value as (...a: unknown[]) => unknown).apply(obj, args)),
        );
    },
  });
}
