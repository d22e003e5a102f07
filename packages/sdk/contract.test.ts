import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findBreakingChanges, type OpenApiDocument } from './scripts/breaking.ts';
import { CONTRACT_FILES, runContract, scratchCopy } from './scripts/contract.ts';

const committed = JSON.parse(
  readFileSync(path.join(import.meta.dirname, CONTRACT_FILES.document), 'utf8'),
) as OpenApiDocument & { paths: Record<string, any>; components: { schemas: any } };

function copy(): any {
  return structuredClone(committed);
}

describe('findBreakingChanges', () => {
  it('finds nothing between the committed snapshot and itself', () => {
    expect(findBreakingChanges(committed, copy())).toEqual([]);
  });

  it('reports a removed response field, following $refs', () => {
    const after = copy();
    const project = after.components.schemas.Project;
    expect(project.properties.name).toBeDefined();
    delete project.properties.name;
    project.required = project.required.filter((k: string) => k !== 'name');
    const found = findBreakingChanges(committed, after);
    expect(found).toContain('GET /api/projects: response 200 field projects[].name removed');
    expect(found).toContain('GET /api/projects/{id}: response 200 field project.name removed');
  });

  it('reports a removed operation and a removed enum value', () => {
    const after = copy();
    delete after.paths['/api/templates'].get;
    const status = after.components.schemas.Project.properties.status;
    const values: string[] = status.enum;
    expect(values).toContain('archived');
    status.enum = values.filter((v) => v !== 'archived');
    const found = findBreakingChanges(committed, after);
    expect(found).toContain('GET /api/templates: operation removed');
    expect(found).toContain(
      'GET /api/projects/{id}: response 200 field project.status: enum value "archived" removed',
    );
  });

  it('reports a newly required request field, and not an added optional one', () => {
    const after = copy();
    const body =
      after.paths['/api/auth/register'].post.requestBody.content['application/json'].schema;
    body.properties.nickname = { type: 'string' };
    expect(findBreakingChanges(committed, after)).toEqual([]);
    body.required = [...body.required, 'nickname'];
    expect(findBreakingChanges(committed, after)).toEqual([
      'POST /api/auth/register: request field nickname is now required',
    ]);
  });

  it('treats additions (a route, a response field) as compatible', () => {
    const after = copy();
    after.paths['/api/new-thing'] = { get: { responses: { 200: { description: 'x' } } } };
    after.components.schemas.Project.properties.color = { type: 'string' };
    expect(findBreakingChanges(committed, after)).toEqual([]);
  });
});

describe('npm run contract:check', () => {
  let scratch: ReturnType<typeof scratchCopy> | undefined;
  afterEach(() => {
    scratch?.remove();
    scratch = undefined;
  });

  async function check(doc: unknown, args: string[] = ['--check']) {
    scratch ??= scratchCopy();
    const file = path.join(scratch.dir, 'served.json');
    writeFileSync(file, JSON.stringify(doc));
    const lines: string[] = [];
    const code = await runContract([...args, '--document', file], scratch.dir, (l) =>
      lines.push(l),
    );
    return { code, output: lines.join('\n') };
  }

  it('passes when the code serves the committed snapshot', async () => {
    const { code, output } = await check(copy());
    expect(output).toContain('matches the code');
    expect(code).toBe(0);
  });

  it('fails on a route added without regenerating, and is not a breaking change', async () => {
    const served = copy();
    served.paths['/api/projects/{id}/stars'] = {
      get: { responses: { 200: { description: 'Stars' } } },
    };
    const { code, output } = await check(served);
    expect(code).toBe(1);
    expect(output).toContain('contract drift: openapi.json and src/schema.ts');
    expect(output).not.toContain('breaking');
  });

  it('fails on a removed field as drift and as a breaking change', async () => {
    const served = copy();
    delete served.components.schemas.Project.properties.description;
    const { code, output } = await check(served);
    expect(code).toBe(1);
    expect(output).toContain('contract drift');
    expect(output).toContain(
      'GET /api/projects: response 200 field projects[].description removed',
    );
  });

  it('regenerating refuses a breaking change unless accepted, then the check passes', async () => {
    const served = copy();
    delete served.components.schemas.Project.properties.description;
    const refused = await check(served, []);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('refusing to write');
    const accepted = await check(served, ['--accept-breaking']);
    expect(accepted.code).toBe(0);
    const after = await check(served);
    expect(after.code).toBe(0);
    const types = readFileSync(path.join(scratch!.dir, CONTRACT_FILES.types), 'utf8');
    expect(types).toContain('Do not edit');
  });
});
