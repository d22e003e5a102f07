/**
 * Breaking changes between two OpenAPI 3.1 documents, as a client of the old one sees them:
 * a removed operation, a removed success response, a removed response field, a removed enum
 * value (anywhere), a request field or parameter that became required. Additions are never
 * breaking. Schemas are compared as flattened field paths (`projects[].status`), with `$ref`s
 * followed and the variants of `anyOf`/`oneOf`/`allOf` merged.
 */

/** An OpenAPI document, as far as this check reads it. */
export interface OpenApiDocument {
  paths?: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown>; parameters?: Record<string, unknown> };
}

type Schema = Record<string, unknown>;

/** What one field path carries: its enum values (if any) and whether the sender must send it. */
interface Field {
  enum?: Set<string>;
  required: boolean;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/**
 * Lists the breaking changes from `before` to `after`, one human-readable line each
 * (`GET /api/projects: response 200 field projects[].name removed`); empty when compatible.
 */
export function findBreakingChanges(before: OpenApiDocument, after: OpenApiDocument): string[] {
  const out: string[] = [];
  for (const [route, oldItem] of Object.entries(before.paths ?? {})) {
    const newItem = after.paths?.[route];
    for (const method of METHODS) {
      const oldOp = oldItem[method] as Schema | undefined;
      if (!oldOp) continue;
      const where = `${method.toUpperCase()} ${route}`;
      const newOp = newItem?.[method] as Schema | undefined;
      if (!newOp) {
        out.push(`${where}: operation removed`);
        continue;
      }
      compareParameters(where, before, oldOp, oldItem, after, newOp, newItem!, out);
      compareRequestBody(where, before, oldOp, after, newOp, out);
      compareResponses(where, before, oldOp, after, newOp, out);
    }
  }
  return out;
}

function compareParameters(
  where: string,
  before: OpenApiDocument,
  oldOp: Schema,
  oldItem: Record<string, unknown>,
  after: OpenApiDocument,
  newOp: Schema,
  newItem: Record<string, unknown>,
  out: string[],
): void {
  const oldParams = parameters(before, oldOp, oldItem);
  for (const [key, p] of parameters(after, newOp, newItem)) {
    const old = oldParams.get(key);
    if (p.required === true && old?.required !== true) {
      out.push(`${where}: ${key} parameter is now required`);
    }
    if (!old) continue;
    const oldFields = flatten(before, old.schema, true);
    const newFields = flatten(after, p.schema, true);
    removedEnumValues(`${where}: ${key} parameter`, oldFields, newFields, out);
  }
}

function parameters(
  doc: OpenApiDocument,
  op: Schema,
  item: Record<string, unknown>,
): Map<string, Schema> {
  const list = [
    ...((item.parameters as unknown[]) ?? []),
    ...((op.parameters as unknown[]) ?? []),
  ].map((p) => deref(doc, p));
  return new Map(list.map((p) => [`${String(p.in)} "${String(p.name)}"`, p]));
}

function compareRequestBody(
  where: string,
  before: OpenApiDocument,
  oldOp: Schema,
  after: OpenApiDocument,
  newOp: Schema,
  out: string[],
): void {
  const oldBody = oldOp.requestBody ? deref(before, oldOp.requestBody) : undefined;
  const newBody = newOp.requestBody ? deref(after, newOp.requestBody) : undefined;
  if (!newBody) return;
  if (newBody.required === true && oldBody?.required !== true) {
    out.push(`${where}: request body is now required`);
  }
  const oldSchema = jsonSchema(oldBody);
  const newSchema = jsonSchema(newBody);
  if (!newSchema) return;
  const oldFields = oldSchema ? flatten(before, oldSchema, true) : new Map<string, Field>();
  const newFields = flatten(after, newSchema, true);
  for (const [path, field] of newFields) {
    if (!field.required) continue;
    const old = oldFields.get(path);
    if (old?.required) continue;
    // A required field inside an object the client never sent is not its concern.
    const parent = parentPath(path);
    if (!old && parent !== '' && !oldFields.has(parent)) continue;
    out.push(`${where}: request field ${path} is now required`);
  }
  removedEnumValues(`${where}: request field`, oldFields, newFields, out);
}

function compareResponses(
  where: string,
  before: OpenApiDocument,
  oldOp: Schema,
  after: OpenApiDocument,
  newOp: Schema,
  out: string[],
): void {
  const oldResponses = (oldOp.responses ?? {}) as Record<string, unknown>;
  const newResponses = (newOp.responses ?? {}) as Record<string, unknown>;
  for (const [status, oldResponse] of Object.entries(oldResponses)) {
    if (!/^2/.test(status)) continue; // error bodies share one contract shape
    const newResponse = newResponses[status];
    if (!newResponse) {
      out.push(`${where}: response ${status} removed`);
      continue;
    }
    const oldSchema = jsonSchema(deref(before, oldResponse));
    if (!oldSchema) continue;
    const newSchema = jsonSchema(deref(after, newResponse));
    if (!newSchema) {
      out.push(`${where}: response ${status} is no longer JSON`);
      continue;
    }
    const oldFields = flatten(before, oldSchema, false);
    const newFields = flatten(after, newSchema, false);
    for (const path of oldFields.keys()) {
      if (path !== '' && !newFields.has(path)) {
        out.push(`${where}: response ${status} field ${path} removed`);
      }
    }
    removedEnumValues(`${where}: response ${status} field`, oldFields, newFields, out);
  }
}

function removedEnumValues(
  label: string,
  oldFields: Map<string, Field>,
  newFields: Map<string, Field>,
  out: string[],
): void {
  for (const [path, old] of oldFields) {
    const now = newFields.get(path);
    if (!old.enum || !now) continue;
    // A field that lost its enum accepts anything: nothing was removed.
    if (!now.enum) continue;
    for (const value of old.enum) {
      if (!now.enum.has(value)) {
        out.push(`${label} ${path || '(root)'}: enum value ${value} removed`);
      }
    }
  }
}

function jsonSchema(body: Schema | undefined): Schema | undefined {
  const content = body?.content as Record<string, { schema?: Schema }> | undefined;
  if (!content) return undefined;
  const key = Object.keys(content).find((k) => /[/+]json\b/.test(k));
  return key ? content[key]?.schema : undefined;
}

function deref(doc: OpenApiDocument, value: unknown): Schema {
  let schema = (value ?? {}) as Schema;
  for (let hops = 0; typeof schema.$ref === 'string' && hops < 32; hops++) {
    const parts = (schema.$ref as string).replace(/^#\//, '').split('/');
    let target: unknown = doc;
    for (const part of parts) {
      target = (target as Record<string, unknown> | undefined)?.[
        part.replace(/~1/g, '/').replace(/~0/g, '~')
      ];
    }
    schema = (target ?? {}) as Schema;
  }
  return schema;
}

function parentPath(path: string): string {
  const i = Math.max(path.lastIndexOf('.'), path.lastIndexOf('[]'));
  return i <= 0 ? '' : path.slice(0, i);
}

/**
 * Every field path of `schema` (`''` is the root) with its enum values and whether it is
 * required all the way from its parent. `request` merges union variants' requiredness with AND
 * (a field is required only if every variant requires it).
 */
function flatten(doc: OpenApiDocument, schema: unknown, request: boolean): Map<string, Field> {
  const out = new Map<string, Field>();
  walk(doc, schema, '', true, out, new Set(), request);
  return out;
}

function walk(
  doc: OpenApiDocument,
  raw: unknown,
  path: string,
  required: boolean,
  out: Map<string, Field>,
  refs: Set<string>,
  request: boolean,
): void {
  if (raw === undefined || raw === null || typeof raw !== 'object') return;
  const ref = (raw as Schema).$ref;
  if (typeof ref === 'string') {
    if (refs.has(ref)) return; // recursive schema: its fields were walked once already
    refs = new Set(refs).add(ref);
  }
  const schema = deref(doc, raw);
  const field = out.get(path);
  if (field) field.required = request ? field.required && required : field.required || required;
  else out.set(path, { required });
  const values = enumValues(schema);
  if (values) {
    const f = out.get(path)!;
    f.enum = new Set([...(f.enum ?? []), ...values]);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const variants = (schema[key] as unknown[] | undefined)?.filter(
      (v) => (v as Schema).type !== 'null',
    );
    for (const variant of variants ?? []) walk(doc, variant, path, required, out, refs, request);
  }
  for (const part of (schema.allOf as unknown[] | undefined) ?? []) {
    walk(doc, part, path, required, out, refs, request);
  }
  const requiredKeys = new Set((schema.required as string[] | undefined) ?? []);
  for (const [name, child] of Object.entries(
    (schema.properties as Record<string, unknown>) ?? {},
  )) {
    walk(doc, child, path ? `${path}.${name}` : name, requiredKeys.has(name), out, refs, request);
  }
  if (schema.items) walk(doc, schema.items, `${path}[]`, false, out, refs, request);
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    walk(doc, schema.additionalProperties, `${path}.*`, false, out, refs, request);
  }
}

function enumValues(schema: Schema): string[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v));
  if ('const' in schema) return [JSON.stringify(schema.const)];
  return undefined;
}
