import fc from 'fast-check';
import { makeZip } from './zip-writer.ts';

/** The parts of an OpenAPI 3.1 document the fuzzer reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

interface OpenApiOperation {
  parameters?: { name: string; in: 'path' | 'query' | 'header' | 'cookie'; schema?: JsonSchema }[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: JsonSchema }> };
  security?: unknown[];
  responses?: Record<string, unknown>;
}

/** A JSON Schema as zod-to-openapi writes it (the subset the generator understands). */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  nullable?: boolean;
  example?: unknown;
  default?: unknown;
}

/** One operation of the document, flattened. */
export interface Operation {
  method: string;
  /** OpenAPI path template, `/api/projects/{id}`. */
  path: string;
  pathParams: { name: string; schema: JsonSchema }[];
  queryParams: { name: string; schema: JsonSchema }[];
  body?: { contentType: string; schema: JsonSchema; required: boolean };
  secured: boolean;
  /** 5xx statuses the operation's contract declares (503 when a dependency is missing). */
  declared5xx: number[];
}

/** Real values the fuzzer may put where an id or a name goes, so requests get past 404s. */
export interface KnownValues {
  projectIds: string[];
  userIds: string[];
  filePaths: string[];
  services: string[];
  envNames: string[];
  templateIds: string[];
  requestIds: string[];
  changesetIds: string[];
}

/** Which identity a case calls as. */
export type Caller = 'owner' | 'editor' | 'anonymous' | 'garbage';

/** A generated request, before known values are substituted. */
export interface FuzzCase {
  caller: Caller;
  /** Path parameter values: a string to encode, or `{raw}` spliced in verbatim. */
  pathParams: Record<string, PathValue>;
  /** Query string: pairs to encode, plus an optional raw tail (`q=%00`). */
  query: [string, string][];
  rawQuery?: string;
  body?: { contentType?: string; bytes: string | Uint8Array };
}

type PathValue = string | { raw: string } | { known: keyof KnownValues; index: number };

/** Strings that have broken servers: NUL, lone surrogates, odd Unicode, escapes, injections. */
export const hostileStrings: readonly string[] = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\ud83d',
  '\udfff\ud800',
  '',
  ' ',
  '\t\r\n',
  '\u0085\u2028\u2029',
  '\u202e\u0644\u0627',
  '\ufeff',
  '\uffff\ufffe',
  '\u{10ffff}',
  'e\u0301\u0301\u0301',
  '\u{1f680}\u200d\u{1f525}',
  'İıßẞΣς',
  'ﷺ',
  '%00',
  '%',
  '%_\\',
  '\\',
  '..',
  '../../../etc/passwd',
  '/etc/passwd',
  'C:\\Windows\\win.ini',
  'c:x.txt',
  "'; DROP TABLE users; --",
  '" OR "1"="1',
  '${jndi:ldap://x}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'NaN',
  'Infinity',
  '-1',
  '1e309',
  '0x10',
  'null',
  'true',
  '[]',
  '{}',
  '2f6d9c1e-8f7b-4e0a-9a57-4d2f8e3c1b20',
  '00000000-0000-0000-0000-000000000000',
  'a'.repeat(256),
  'é'.repeat(5000),
  '\u{1f600}'.repeat(3000),
  'a/'.repeat(600),
];

/** Raw path segments and query strings spliced in without encoding. */
const rawUrlPieces: readonly string[] = [
  '%00',
  'a%00b',
  '%ED%A0%80',
  '%F0%9F',
  '%C0%80',
  '%C0%AE%C0%AE',
  '%FF%FE',
  '%',
  '%zz',
  '%25',
  '%2e%2e',
  '..',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '%2F',
  '%5C',
  '%0A',
  '%20',
  '%E2%80%AE',
];

const rawBodies: readonly string[] = [
  '',
  '{',
  '{"a":',
  'null',
  '[]',
  '1',
  '"x"',
  'true',
  '\u0000',
  '{"name":"\\u0000"}',
  '{"name":"\\ud800"}',
  '{"\\u0000":1}',
  '{"\\ud800":"\\udc00x"}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"x":1}}}',
  '['.repeat(5000) + ']'.repeat(5000),
  '{"a":1,"a":2}',
  '{"a":1e999}',
  '{"a":-0}',
  "{'a':1}",
  '\ufeff{}',
];

/** Reads every operation out of the document. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = op.parameters ?? [];
      const bodyEntry = op.requestBody ? Object.entries(op.requestBody.content)[0] : undefined;
      ops.push({
        method: method.toUpperCase(),
        path,
        pathParams: params
          .filter((p) => p.in === 'path')
          .map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        queryParams: params
          .filter((p) => p.in === 'query')
          .map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        ...(bodyEntry
          ? {
              body: {
                contentType: bodyEntry[0],
                schema: bodyEntry[1].schema ?? {},
                required: op.requestBody!.required ?? false,
              },
            }
          : {}),
        secured: (op.security ?? []).length > 0,
        declared5xx: Object.keys(op.responses ?? {})
          .map(Number)
          .filter((status) => status >= 500),
      });
    }
  }
  return ops;
}

/** A value anywhere: a hostile string, a wrong type, or a huge one. */
function hostileValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...hostileStrings) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom<unknown>(
        null,
        true,
        false,
        0,
        -1,
        1.5,
        2 ** 31,
        Number.MAX_SAFE_INTEGER,
        -Number.MAX_SAFE_INTEGER,
        [],
        {},
        [null],
        { '': '' },
      ),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(300_000), '\u0000'.repeat(70_000)) },
  );
}

/** Something like what the schema asks for (sometimes at or past its edges). */
function validish(
  schema: JsonSchema,
  doc: OpenApiDocument,
  depth = 0,
  hostility = 8,
): fc.Arbitrary<unknown> {
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return validish(doc.components?.schemas?.[name] ?? {}, doc, depth, hostility);
  }
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const choices = schema.anyOf ?? schema.oneOf;
  if (choices && choices.length > 0) {
    return fc.oneof(...choices.map((s) => validish(s, doc, depth + 1, hostility)));
  }
  if (schema.allOf && schema.allOf.length > 0)
    return validish(schema.allOf[0]!, doc, depth + 1, hostility);
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length > 1) {
    return fc.oneof(
      ...types.map((type) => validish({ ...schema, type }, doc, depth + 1, hostility)),
    );
  }
  switch (types[0]) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
    case 'number': {
      const min = schema.minimum ?? -1000;
      const max = schema.maximum ?? Math.max(min + 1000, 1000);
      return fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min, max }) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(min - 1, max + 1, 0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1),
        },
      );
    }
    case 'string':
      return stringFor(schema);
    case 'array': {
      const maxLength = Math.min(schema.maxItems ?? 4, 4);
      return fc.array(
        depth > 4 ? fc.string() : value(schema.items ?? {}, doc, depth + 1, hostility),
        {
          minLength: Math.min(schema.minItems ?? 0, maxLength),
          maxLength,
        },
      );
    }
    case 'object':
    default: {
      if (!schema.properties && types[0] !== 'object') {
        // Untyped: arbitrary JSON.
        return fc.jsonValue({ maxDepth: 3 });
      }
      return objectFor(schema, doc, depth, hostility);
    }
  }
}

function objectFor(
  schema: JsonSchema,
  doc: OpenApiDocument,
  depth: number,
  hostility: number,
): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, s] of Object.entries(props)) {
    const known = knownByBodyField[k];
    shape[k] = known
      ? fc.oneof(
          { weight: 3, arbitrary: fc.nat(20).map((i) => knownMarker(known, i)) },
          { weight: 1, arbitrary: value(s, doc, depth + 1, hostility) },
        )
      : value(s, doc, depth + 1, hostility);
  }
  const required = schema.required ?? [];
  const base = fc.record(shape, {
    requiredKeys: Object.keys(props).filter((k) => required.includes(k)),
  });
  const extra =
    schema.additionalProperties && depth < 4
      ? fc.dictionary(
          hostility === 0
            ? stringFor(schema.propertyNames ?? {})
            : fc.oneof(
                { weight: 4, arbitrary: stringFor(schema.propertyNames ?? {}) },
                { weight: 1, arbitrary: fc.constantFrom(...hostileStrings.slice(0, 20)) },
              ),
          typeof schema.additionalProperties === 'object'
            ? value(schema.additionalProperties, doc, depth + 1, hostility)
            : hostility === 0
              ? fc.jsonValue({ maxDepth: 2 })
              : fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileValue()),
          { maxKeys: 4 },
        )
      : fc.constant({});
  const drop =
    hostility === 0
      ? fc.constant(false)
      : fc.oneof(
          { weight: 24, arbitrary: fc.constant(false) },
          { weight: hostility, arbitrary: fc.constant(true) },
        );
  return fc.tuple(base, extra, drop).map(([b, e, dropOne]) => {
    const out: Record<string, unknown> = { ...e, ...(b as object) };
    // Now and then a required key goes missing.
    if (dropOne && required.length > 0) delete out[required[0]!];
    return out;
  });
}

function stringFor(schema: JsonSchema): fc.Arbitrary<string> {
  const max = Math.min(schema.maxLength ?? 60, 60);
  const min = Math.min(schema.minLength ?? 0, max);
  const samples: string[] = [];
  if (typeof schema.example === 'string') samples.push(schema.example);
  if (typeof schema.default === 'string') samples.push(schema.default);
  const options: fc.WeightedArbitrary<string>[] = [
    { weight: 4, arbitrary: fc.string({ minLength: min, maxLength: max }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: min, maxLength: max }) },
  ];
  if (schema.format === 'uuid') options.push({ weight: 30, arbitrary: fc.uuid() });
  if (schema.format === 'email') {
    options.push({
      weight: 30,
      arbitrary: fc
        .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,20}$/), fc.domain())
        .map(([local, domain]) => `${local}@${domain}`),
    });
  }
  if (schema.format === 'uri') {
    options.push({ weight: 30, arbitrary: fc.webUrl() });
  }
  if (schema.pattern) {
    try {
      options.push({ weight: 30, arbitrary: fc.stringMatching(new RegExp(schema.pattern, 'u')) });
    } catch {
      // a pattern fast-check cannot generate from: the other strings will do
    }
  }
  if (samples.length > 0) options.push({ weight: 3, arbitrary: fc.constantFrom(...samples) });
  return fc.oneof(...options);
}

/** Strings with what PostgreSQL refuses (NUL, unpaired surrogates), often in the middle. */
const unstorable = fc.oneof(
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udc00y', '\ud83d', 'ok\udfff\ud800'),
  fc
    .tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\u0000', '\ud800', '\udc00'))
    .map(([a, bad]) => `${a}${bad}${a}`),
);

/**
 * `base` with one string in it (a value or an object key, at any depth) replaced by a hostile
 * one: the request is otherwise valid, so it gets as far as the service and its SQL.
 */
function withOneHostileString(base: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const replacement = fc.oneof(
    { weight: 6, arbitrary: unstorable },
    { weight: 2, arbitrary: fc.constantFrom(...hostileStrings) },
    // Arrays nested this deep, spliced in when sent (JSON.stringify would overflow here).
    { weight: 1, arbitrary: fc.constantFrom(100, 20_000, 200_000).map((n) => `@@deep:${n}@@`) },
  );
  return fc
    .tuple(base, fc.nat(), replacement, fc.boolean())
    .map(([v, pick, bad, renameKey]) => replaceString(v, pick, bad, renameKey));
}

function replaceString(value: unknown, pick: number, bad: string, renameKey: boolean): unknown {
  const spots: { parent: unknown; key: string | number; isKey: boolean }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (typeof item === 'string') spots.push({ parent: v, key: i, isKey: false });
        walk(item);
      });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        if (typeof item === 'string' || (renameKey && typeof item === 'object')) {
          spots.push({ parent: v, key: k, isKey: renameKey && typeof item === 'object' });
        }
        walk(item);
      }
    }
  };
  const copy = structuredClone(value);
  if (typeof copy === 'string') return bad;
  walk(copy);
  if (spots.length === 0) return copy;
  const spot = spots[pick % spots.length]!;
  const parent = spot.parent as Record<string | number, unknown>;
  if (spot.isKey) {
    parent[bad] = parent[spot.key];
    delete parent[spot.key];
  } else {
    parent[spot.key] = bad;
  }
  return copy;
}

/**
 * A valid-ish value most of the time, a hostile one otherwise. `hostility` is the weight of
 * hostile values against 24 for valid-ish ones, at every level.
 */
function value(
  schema: JsonSchema,
  doc: OpenApiDocument,
  depth = 0,
  hostility = 8,
): fc.Arbitrary<unknown> {
  if (hostility === 0) return validish(schema, doc, depth, 0);
  return fc.oneof(
    { weight: 24, arbitrary: validish(schema, doc, depth, hostility) },
    { weight: hostility, arbitrary: hostileValue() },
  );
}

/** Body fields that name something real (`projectId` of the assistant's routes). */
const knownByBodyField: Record<string, keyof KnownValues> = { projectId: 'projectIds' };

/** A placeholder for a known value, replaced when the request is sent (see {@link bodyOf}). */
function knownMarker(pool: keyof KnownValues, index: number): string {
  return `@@known:${pool}:${index}@@`;
}

/** The bytes of a case's body, placeholders replaced by known values and deep arrays. */
export function bodyOf(c: FuzzCase, known: KnownValues): string | Uint8Array | undefined {
  const bytes = c.body?.bytes;
  if (typeof bytes !== 'string') return bytes;
  return bytes
    .replace(/@@known:(\w+):(\d+)@@/g, (_, pool: keyof KnownValues, index: string) => {
      const values = known[pool] ?? [];
      return values.length > 0 ? values[Number(index) % values.length]! : 'missing';
    })
    .replace(/"@@deep:(\d+)@@"/g, (_, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));
}

/** Where known values go, by parameter name. */
const knownByParam: Record<string, keyof KnownValues> = {
  id: 'projectIds',
  projectId: 'projectIds',
  userId: 'userIds',
  path: 'filePaths',
  service: 'services',
  name: 'envNames',
  requestId: 'requestIds',
  changesetId: 'changesetIds',
};

function pathValue(
  op: Operation,
  param: { name: string; schema: JsonSchema },
  doc: OpenApiDocument,
): fc.Arbitrary<PathValue> {
  let known = knownByParam[param.name];
  if (op.path.startsWith('/api/templates/')) known = 'templateIds';
  const hostileText = fc
    .oneof(fc.constantFrom(...hostileStrings), fc.string({ unit: 'binary', maxLength: 30 }))
    .filter((s) => s.length > 0);
  const options: fc.WeightedArbitrary<PathValue>[] = [
    { weight: 2, arbitrary: hostileText },
    { weight: 2, arbitrary: fc.constantFrom(...rawUrlPieces).map((raw) => ({ raw })) },
    {
      weight: 1,
      arbitrary: stringFor(param.schema).filter((s) => s.length > 0),
    },
  ];
  if (known) {
    options.push({
      weight: 20,
      arbitrary: fc.nat(20).map((index) => ({ known: known!, index })),
    });
  } else {
    options.push({
      weight: 4,
      arbitrary: validish(param.schema, doc)
        .map((v) => String(v))
        .filter((s) => s.length > 0),
    });
  }
  return fc.oneof(...options);
}

function queryFor(op: Operation, doc: OpenApiDocument): fc.Arbitrary<[string, string][]> {
  if (op.queryParams.length === 0) {
    return fc.constant([]);
  }
  const entries = op.queryParams.map((p) =>
    fc.option(
      fc
        .oneof(
          { weight: 6, arbitrary: validish(p.schema, doc) },
          { weight: 2, arbitrary: unstorable },
          { weight: 2, arbitrary: hostileValue() },
        )
        .map((v): [string, string] => [p.name, typeof v === 'string' ? v : JSON.stringify(v)]),
      { nil: undefined, freq: 3 },
    ),
  );
  return fc
    .tuple(...entries)
    .map((pairs) => pairs.filter((p): p is [string, string] => p !== undefined));
}

function bodyFor(op: Operation, doc: OpenApiDocument): fc.Arbitrary<FuzzCase['body']> {
  const spec = op.body;
  if (!spec) {
    return fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(...rawBodies).map((bytes) => ({
          contentType: 'application/json',
          bytes,
        })),
      },
    );
  }
  if (spec.contentType === 'application/zip') {
    return fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ contentType: spec.contentType, bytes })),
      fc
        .array(
          fc.record({
            name: fc.oneof(
              fc.constantFrom('a.txt', 'dir/b.js', 'p/src/index.ts'),
              fc.constantFrom(...hostileStrings),
            ),
            data: fc.oneof(fc.string(), fc.constantFrom('\u0000\u0001', '\ud800')),
          }),
          { minLength: 1, maxLength: 4 },
        )
        .map((entries) => ({
          contentType: spec.contentType,
          bytes: new Uint8Array(makeZip(entries)),
        })),
    );
  }
  // Some bodies valid-ish all the way down (to reach the service), some valid but for one
  // hostile string, the rest with hostile parts anywhere.
  const json = fc
    .oneof(
      { weight: 1, arbitrary: value(spec.schema, doc, 0, 0) },
      { weight: 3, arbitrary: withOneHostileString(value(spec.schema, doc, 0, 0)) },
      { weight: 1, arbitrary: value(spec.schema, doc, 0, 1) },
      { weight: 2, arbitrary: value(spec.schema, doc, 0, 8) },
    )
    .map((v) => JSON.stringify(v) ?? 'null');
  const contentType = fc.oneof(
    { weight: 12, arbitrary: fc.constant(spec.contentType) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        'text/plain',
        'application/json; charset=utf-16',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=utf-8; charset=latin1',
      ),
    },
  );
  const bytes = fc.oneof(
    { weight: 12, arbitrary: json.map((s): string | Uint8Array => s) },
    { weight: 2, arbitrary: fc.constantFrom(...rawBodies) },
    // Bytes that are not UTF-8 at all, inside an otherwise fine document.
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
        Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
        Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0x80, 0x22, 0x7d]),
      ),
    },
  );
  return fc.record({ contentType, bytes }).map(({ contentType, bytes }) => ({
    ...(contentType === undefined ? {} : { contentType }),
    bytes,
  }));
}

/** Every case for one operation, as a fast-check arbitrary. */
export function casesFor(op: Operation, doc: OpenApiDocument): fc.Arbitrary<FuzzCase> {
  const pathParams = fc.record(
    Object.fromEntries(op.pathParams.map((p) => [p.name, pathValue(op, p, doc)])),
  );
  const caller = fc.oneof(
    { weight: op.secured ? 16 : 2, arbitrary: fc.constant<Caller>('owner') },
    { weight: 2, arbitrary: fc.constant<Caller>('editor') },
    { weight: op.secured ? 1 : 12, arbitrary: fc.constant<Caller>('anonymous') },
    { weight: 1, arbitrary: fc.constant<Caller>('garbage') },
  );
  const rawQuery = fc.option(
    fc
      .tuple(
        fc.constantFrom('q', 'dir', 'limit', 'before', 'wait', 'token', 'x'),
        fc.constantFrom(...rawUrlPieces),
      )
      .map(([k, v]) => `${k}=${v}`),
    { nil: undefined, freq: 6 },
  );
  return fc
    .record({
      caller,
      pathParams,
      query: queryFor(op, doc),
      rawQuery,
      body: bodyFor(op, doc),
    })
    .map((c) => {
      const out: FuzzCase = { caller: c.caller, pathParams: c.pathParams, query: c.query };
      if (c.rawQuery !== undefined) out.rawQuery = c.rawQuery;
      if (c.body !== undefined) out.body = c.body;
      return out;
    });
}

/**
 * Percent-encodes a path or query value, including what encodeURIComponent refuses: a lone
 * surrogate becomes its (invalid) three UTF-8-style bytes, as a hostile client would send it.
 */
export function percentEncode(value: string, keepSlashes = false): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += `%${(0xe0 | (code >> 12)).toString(16).toUpperCase()}%${(0x80 | ((code >> 6) & 0x3f))
        .toString(16)
        .toUpperCase()}%${(0x80 | (code & 0x3f)).toString(16).toUpperCase()}`;
    } else if (keepSlashes && ch === '/') {
      out += '/';
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

/** The URL of a case, with known values picked from `known`. */
export function urlOf(op: Operation, c: FuzzCase, known: KnownValues): string {
  let path = op.path;
  for (const p of op.pathParams) {
    const v = c.pathParams[p.name];
    let piece: string;
    if (v === undefined) piece = 'x';
    else if (typeof v === 'string') piece = percentEncode(v, p.name === 'path');
    else if ('raw' in v) piece = v.raw;
    else {
      const pool = known[v.known];
      const picked = pool.length > 0 ? pool[v.index % pool.length]! : 'missing';
      piece = percentEncode(picked, p.name === 'path');
    }
    path = path.replace(`{${p.name}}`, piece);
  }
  const query = c.query.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`);
  if (c.rawQuery) query.push(c.rawQuery);
  return query.length > 0 ? `${path}?${query.join('&')}` : path;
}
