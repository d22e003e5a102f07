import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTestApp, registerAndLogin, type TestApp } from '../../../test/app.ts';
import { makeZip, type RawZipEntry } from '../../../test/zip-writer.ts';

const MiB = 1024 * 1024;
let t: TestApp;
let token: string;
let projectId: string;

beforeAll(async () => {
  t = await createTestApp({
    VAPORFORM_MAX_FILE_BYTES: String(2 * MiB),
    VAPORFORM_IMPORT_MAX_UNCOMPRESSED_BYTES: String(4 * MiB),
    VAPORFORM_IMPORT_MAX_ENTRIES: '10',
    VAPORFORM_IMPORT_MAX_BYTES: String(8 * MiB),
  });
  ({ token } = await registerAndLogin(t.app));
  const res = await call(t.app, 'POST', '/api/projects', { token, body: { name: 'Zips' } });
  projectId = res.body.project.id;
});

afterAll(async () => {
  await t?.close();
});

async function importZip(body: Buffer, query = '') {
  const res = await t.app.request(`/api/projects/${projectId}/import${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/zip' },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function paths(): Promise<string[]> {
  const res = await call(t.app, 'GET', `/api/projects/${projectId}/files`, { token });
  return res.body.files.map((f: { path: string }) => f.path);
}

function workspace(): string {
  return t.services.files.workspacePath(projectId);
}

/** Every file under the data dir, to prove a refused archive wrote nowhere. */
function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() || d.isSymbolicLink())
    .map((d) => path.join(d.parentPath, d.name));
}

describe('zip import', () => {
  it('imports files byte-exact in one go (source import) and mirrors them into the workspace', async () => {
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0]), randomBytes(300)]);
    const res = await importZip(
      makeZip([
        { name: 'src/', data: '' },
        { name: 'src/index.ts', data: 'console.log("hi");\n' },
        { name: 'public/logo.png', data: png, method: 0 },
        { name: 'README.md', data: '# Imported\n' },
      ]),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ imported: 3, changed: 3 });
    expect(await paths()).toEqual(['README.md', 'public/logo.png', 'src/index.ts']);
    const logo = await call(t.app, 'GET', `/api/projects/${projectId}/files/public/logo.png`, {
      token,
    });
    expect(logo.body).toMatchObject({ encoding: 'base64', source: 'import' });
    expect(Buffer.from(logo.body.content, 'base64').equals(png)).toBe(true);
    expect(readFileSync(path.join(workspace(), 'public/logo.png')).equals(png)).toBe(true);
  });

  it('drops leading directories with ?strip=1 (archives made by code hosts)', async () => {
    const res = await importZip(
      makeZip([
        { name: 'repo-main/', data: '' },
        { name: 'repo-main/lib/util.js', data: 'module.exports = {};\n' },
      ]),
      '?strip=1',
    );
    expect(res.status).toBe(200);
    expect(await paths()).toContain('lib/util.js');
  });

  it('imports into a folder with ?into= (a zip dropped on a folder), refusing a bad folder whole', async () => {
    const zip = makeZip([
      { name: 'icons/', data: '' },
      { name: 'icons/star.svg', data: '<svg/>\n' },
      { name: 'notes.txt', data: 'inside\n' },
    ]);
    const res = await importZip(zip, '?into=assets/dropped/');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ imported: 2, changed: 2 });
    expect(await paths()).toEqual(
      expect.arrayContaining(['assets/dropped/icons/star.svg', 'assets/dropped/notes.txt']),
    );
    expect(readFileSync(path.join(workspace(), 'assets/dropped/notes.txt'), 'utf8')).toBe(
      'inside\n',
    );

    const before = await paths();
    for (const into of ['../outside', '/etc', 'a//b', 'a/%2e%2e']) {
      const bad = await importZip(zip, `?into=${encodeURIComponent(into)}`);
      expect(bad.status, into).toBe(400);
      expect(bad.body.error.code).toBe('invalid_request');
      expect(bad.body.error.details[0].field).toBe('into');
    }
    expect(await paths()).toEqual(before);
  });

  const refused: [string, RawZipEntry[], number][] = [
    [
      'a traversal entry',
      [
        { name: 'ok.txt', data: 'x' },
        { name: '../evil.txt', data: 'x' },
      ],
      400,
    ],
    ['a deep traversal entry', [{ name: 'a/b/../../../evil.txt', data: 'x' }], 400],
    ['an absolute path', [{ name: '/etc/evil.txt', data: 'x' }], 400],
    ['a backslash traversal', [{ name: '..\\evil.txt', data: 'x' }], 400],
    ['a sibling-prefix escape', [{ name: `../${'x'}/evil.txt`, data: 'x' }], 400],
    ['a symbolic link', [{ name: 'link', data: '/etc/passwd', unixMode: 0o120777 }], 400],
    ['a device file', [{ name: 'dev', data: '', unixMode: 0o020644 }], 400],
    ['a NUL in a name', [{ name: 'a\u0000b.txt', data: 'x' }], 400],
    ['a percent-encoded traversal', [{ name: '%2e%2e/evil.txt', data: 'x' }], 400],
    [
      'a name used twice',
      [
        { name: 'twice.txt', data: 'a' },
        { name: 'twice.txt', data: 'b' },
      ],
      400,
    ],
    [
      'a file that is also a directory',
      [
        { name: 'x', data: 'a' },
        { name: 'x/y', data: 'b' },
      ],
      400,
    ],
    ['a zip bomb (compression ratio)', [{ name: 'zeros.bin', data: Buffer.alloc(1.5 * MiB) }], 400],
    [
      'an entry that inflates beyond its declared size',
      [{ name: 'liar.txt', data: Buffer.alloc(200_000, 'a'), declaredSize: 1000 }],
      400,
    ],
    [
      'too many entries',
      Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })),
      413,
    ],
    [
      'a file over the size limit',
      [{ name: 'big.bin', data: randomBytes(2 * MiB + 1), method: 0 }],
      413,
    ],
    [
      'too many bytes in total',
      Array.from({ length: 3 }, (_, i) => ({
        name: `t${i}.txt`,
        data: randomBytes(1.5 * MiB)
          .toString('base64')
          .slice(0, 1.9 * MiB),
      })),
      413,
    ],
  ];

  for (const [what, entries, status] of refused) {
    it(`refuses an archive with ${what} and writes nothing`, async () => {
      // The project's sibling directory, where a sibling-prefix escape would land.
      const sibling = path.join(path.dirname(workspace()), 'x');
      mkdirSync(sibling, { recursive: true });
      const before = await paths();
      const dataDirBefore = allFiles(t.config.dataDir).filter((f) => !f.includes('/keys/'));
      const res = await importZip(makeZip(entries));
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body.error.code).toBe(status === 400 ? 'invalid_request' : 'too_large');
      expect(await paths()).toEqual(before);
      expect(allFiles(t.config.dataDir).filter((f) => !f.includes('/keys/'))).toEqual(
        dataDirBefore,
      );
      expect(existsSync(path.join(sibling, 'evil.txt'))).toBe(false);
    });
  }

  it('refuses what is not a zip, and an archive over the upload limit', async () => {
    const notZip = await importZip(Buffer.from('certainly not a zip'));
    expect(notZip.status).toBe(400);
    const huge = await importZip(randomBytes(8 * MiB + 1));
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('too_large');
  });

  it('refuses, whole, an archive that clashes with the project (a file where it needs a directory)', async () => {
    const before = await paths();
    const res = await importZip(
      makeZip([
        { name: 'fresh.txt', data: 'fine' },
        { name: 'README.md/inner.txt', data: 'README.md is a file' },
      ]),
    );
    expect(res.status).toBe(409);
    expect(await paths()).toEqual(before);
  });
});

describe('zip archive download', () => {
  it('streams every file, byte-exact, as a zip', async () => {
    const res = await t.app.request(`/api/projects/${projectId}/archive`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="Zips.zip"');
    const zip = await yauzl.fromBufferPromise(Buffer.from(await res.arrayBuffer()), {
      lazyEntries: true,
    });
    const got = new Map<string, Buffer>();
    for await (const entry of zip.eachEntry()) {
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      got.set(entry.fileName, Buffer.concat(chunks));
    }
    expect([...got.keys()].sort()).toEqual((await paths()).sort());
    for (const p of got.keys()) {
      const file = await call(t.app, 'GET', `/api/projects/${projectId}/files/${p}`, { token });
      const bytes = Buffer.from(
        file.body.content,
        file.body.encoding === 'base64' ? 'base64' : 'utf8',
      );
      expect(got.get(p)!.equals(bytes), p).toBe(true);
    }
  });
});

describe('file names that zip tools and Windows refuse', () => {
  it.each(['c:x.txt', 'a/b?.txt', 'nul', 'docs/CON.md', 'trailing.', 'space ', 'a<b>.txt', 'p|q'])(
    'refuses %j on write (400) and keeps the project exportable',
    async (name) => {
      const res = await call(
        t.app,
        'PUT',
        `/api/projects/${projectId}/files/${encodeURIComponent(name).replaceAll('%2F', '/')}`,
        {
          token,
          body: { content: 'x' },
        },
      );
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    },
  );

  it('exports a project holding a name saved before the rules, whole, with the name made portable', async () => {
    const own = await call(t.app, 'POST', '/api/projects', {
      token,
      body: { name: 'Legacy names' },
    });
    const id: string = own.body.project.id;
    const put = await call(t.app, 'PUT', `/api/projects/${id}/files/legacy.txt`, {
      token,
      body: { content: 'kept' },
    });
    expect(put.status).toBe(201);
    await call(t.app, 'PUT', `/api/projects/${id}/files/zz-after.txt`, {
      token,
      body: { content: 'after' },
    });
    // A name accepted by an older version of the rules, straight into the tables.
    await sql`UPDATE project_files SET file_path = 'c:x.txt' WHERE project_id = ${id} AND file_path = 'legacy.txt'`.execute(
      t.services.db,
    );
    const res = await t.app.request(`/api/projects/${id}/archive`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    const zip = await yauzl.fromBufferPromise(Buffer.from(await res.arrayBuffer()), {
      lazyEntries: true,
    });
    const names: string[] = [];
    for await (const entry of zip.eachEntry()) names.push(entry.fileName);
    expect(names.sort()).toEqual(['c_x.txt', 'zz-after.txt']);
  });
});
