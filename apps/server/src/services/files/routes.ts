import { Readable } from 'node:stream';
import { createRoute, z, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { errors } from '../../common/errors.ts';
import {
  bearerSecurity,
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  validationHook,
} from '../../common/router.ts';
import { text } from '../../common/text.ts';
import type { ProjectAccess } from '../projects/index.ts';
import { maxPathBytes } from './paths.ts';
import type { ChangeOutcome, FileMeta, FilesService } from './service.ts';

const tags = ['files'];

// Any string: a malformed id is answered 404 like a project the caller cannot see.
const ProjectId = text().openapi({
  param: { name: 'id', in: 'path' },
  format: 'uuid',
  description: 'Project id; a malformed one is 404',
  example: '2f6d9c1e-8f7b-4e0a-9a57-4d2f8e3c1b20',
});

// Checked by the service (pathProblem) so every caller gets the same rules and messages.
const FilePath = text().openapi({
  description: `Relative POSIX path (\`src/app.ts\`): no leading /, no . or .. segments, no empty segments, no NUL, control characters, backslashes or percent escapes; at most ${maxPathBytes} bytes`,
  example: 'src/app.ts',
});

const WildcardPath = text().openapi({
  param: { name: 'path', in: 'path' },
  description:
    'The file path, slashes included (`/files/src/app.ts`); the same rules as everywhere (400 otherwise)',
  example: 'src/app.ts',
});

const ProjectParams = z.object({ id: ProjectId });
const FileParams = z.object({ id: ProjectId, path: WildcardPath });

const Source = z.enum(['user', 'claude', 'collab', 'container', 'import', 'template']);
const Encoding = z.enum(['utf-8', 'base64']);
const Operation = z.enum(['write', 'delete', 'move', 'restore']);

const FileMetaSchema = z
  .object({
    path: z.string(),
    size: z.number().int().openapi({ description: 'Bytes' }),
    type: z.string().openapi({ description: 'Kind of file: typescript, json, image, binary…' }),
    mimeType: z.string(),
    encoding: Encoding,
    isBinary: z.boolean(),
    version: z.number().int(),
    contentHash: z.string().openapi({ description: 'SHA-256 of the bytes, hex' }),
    lines: z.number().int(),
    source: Source.openapi({ description: 'Who made the current version' }),
    createdAt: z.string(),
    updatedAt: z.string(),
    updatedBy: z.uuid().optional(),
  })
  .openapi('FileMeta');

const FileContentSchema = FileMetaSchema.extend({
  content: z.string().openapi({ description: 'UTF-8 text, or base64 when encoding is base64' }),
}).openapi('FileContent');

const VersionMetaSchema = z
  .object({
    version: z.number().int(),
    operation: Operation,
    contentHash: z.string(),
    size: z.number().int(),
    lines: z.number().int(),
    encoding: Encoding,
    source: Source,
    createdAt: z.string(),
    createdBy: z.uuid().optional(),
    movedFrom: z.string().optional().openapi({ description: 'On a move: the old path' }),
    movedTo: z.string().optional().openapi({ description: 'On a delete by a move: the new path' }),
  })
  .openapi('FileVersion');

const VersionContentSchema = VersionMetaSchema.extend({
  path: z.string(),
  content: z.string(),
}).openapi('FileVersionContent');

const DeletedFileSchema = z
  .object({
    path: z.string(),
    version: z.number().int().openapi({ description: 'The deletion: the path’s last version' }),
    restoreVersion: z
      .number()
      .int()
      .openapi({ description: 'The version before the deletion: what a restore brings back' }),
    size: z.number().int().openapi({ description: 'Bytes of that version' }),
    source: Source.openapi({ description: 'Who deleted it' }),
    deletedAt: z.string(),
    deletedBy: z.uuid().optional(),
  })
  .openapi('DeletedFile');

/** Versions are PostgreSQL integers: a larger number is a 400, not a failed query. */
const maxVersion = 2_147_483_647;

const BaseVersion = z.number().int().min(0).max(maxVersion).optional().openapi({
  description: 'Only if the file is at this version (0: only if it does not exist); else 409',
});

const BaseVersionQuery = z.coerce.number().int().min(0).max(maxVersion).optional().openapi({
  type: 'integer',
  maximum: maxVersion,
  description: 'Only if the file is at this version; else 409',
});

/**
 * A route whose `{path}` spans several segments: Hono matches `:path{[\s\S]+}` (newlines
 * included, so they reach the path rules and get a 400), OpenAPI shows `{path}`.
 */
function wildcard<R extends RouteConfig>(route: R): R {
  return { ...route, path: route.path.replace('/{path}', '/{path}{[\\s\\S]+}'), hide: true };
}

function documentWildcard(app: OpenAPIHono, route: RouteConfig): void {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { middleware, hide, ...doc } = route;
  app.openAPIRegistry.registerPath(doc);
}

function fileRoutes(requireAuth: MiddlewareHandler, access: ProjectAccess) {
  const list = createRoute({
    method: 'get',
    path: '/{id}/files',
    tags,
    summary: 'The project’s files and directories (viewer)',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: {
      params: ProjectParams,
      query: z.object({
        dir: FilePath.optional().openapi({ description: 'Only files under this directory' }),
      }),
    },
    responses: {
      200: jsonResponse(
        z.object({
          files: z.array(FileMetaSchema),
          directories: z.array(z.string()).openapi({ description: 'Every directory, path order' }),
        }),
        'Files in path order (byte order)',
      ),
      ...errorResponses(400, 401, 404),
    },
  });

  const read = createRoute({
    method: 'get',
    path: '/{id}/files/{path}',
    tags,
    summary: 'A file with its content (viewer)',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: { params: FileParams },
    responses: {
      200: jsonResponse(FileContentSchema, 'The file'),
      ...errorResponses(400, 401, 404),
    },
  });

  const write = createRoute({
    method: 'put',
    path: '/{id}/files/{path}',
    tags,
    summary: 'Create or replace a file (editor)',
    description:
      'Binary content travels as base64 (`encoding: "base64"`). A new version is made only when the bytes change. With `baseVersion`, a stale version is 409 and nothing changes.',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor')] as const,
    request: {
      params: FileParams,
      body: jsonBody(
        z.object({
          // NUL is content here (stored as base64); unpaired surrogates are not text at all.
          content: text({ allowNul: true }),
          encoding: Encoding.optional().openapi({ description: 'Default utf-8' }),
          baseVersion: BaseVersion,
        }),
      ),
    },
    responses: {
      200: jsonResponse(
        z.object({ file: FileMetaSchema, changed: z.boolean() }),
        'Updated (changed is false when the content was already that)',
      ),
      201: jsonResponse(z.object({ file: FileMetaSchema, changed: z.boolean() }), 'Created'),
      ...errorResponses(400, 401, 403, 404, 409, 413),
    },
  });

  const remove = createRoute({
    method: 'delete',
    path: '/{id}/files/{path}',
    tags,
    summary: 'Delete a file, or every file under a directory (editor)',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor')] as const,
    request: { params: FileParams, query: z.object({ baseVersion: BaseVersionQuery }) },
    responses: { 204: { description: 'Deleted' }, ...errorResponses(400, 401, 403, 404, 409) },
  });

  const move = createRoute({
    method: 'post',
    path: '/{id}/move',
    tags,
    summary: 'Move or rename a file or a directory (editor)',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor')] as const,
    request: {
      params: ProjectParams,
      body: jsonBody(z.object({ from: FilePath, to: FilePath, baseVersion: BaseVersion })),
    },
    responses: {
      200: jsonResponse(
        z.object({
          file: FileMetaSchema.optional().openapi({ description: 'When one file moved' }),
          files: z.array(FileMetaSchema),
        }),
        'The moved files at their new paths',
      ),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  });

  const history = createRoute({
    method: 'get',
    path: '/{id}/history/{path}',
    tags,
    summary: 'A path’s versions, newest first; or one version with ?version=N (viewer)',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: {
      params: FileParams,
      query: z.object({
        version: z.coerce.number().int().min(1).max(maxVersion).optional().openapi({
          type: 'integer',
          maximum: maxVersion,
          description: 'Answer this version with its content',
        }),
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(100)
          .openapi({ type: 'integer', default: 100 }),
        before: z.coerce.number().int().min(1).max(maxVersion).optional().openapi({
          type: 'integer',
          maximum: maxVersion,
          description: 'Only versions older than this one',
        }),
      }),
    },
    responses: {
      200: jsonResponse(
        z.union([z.object({ versions: z.array(VersionMetaSchema) }), VersionContentSchema]),
        '`{versions}`, or with ?version=N `{path, version, content, encoding, …}`',
      ),
      ...errorResponses(400, 401, 404),
    },
  });

  const restore = createRoute({
    method: 'post',
    path: '/{id}/restore',
    tags,
    summary: 'Make an old version current again, as a new version (editor)',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor')] as const,
    request: {
      params: ProjectParams,
      body: jsonBody(
        z.object({ path: FilePath, version: z.number().int().min(1).max(maxVersion) }),
      ),
    },
    responses: {
      200: jsonResponse(z.object({ file: FileMetaSchema, changed: z.boolean() }), 'The file'),
      ...errorResponses(400, 401, 403, 404, 413),
    },
  });

  const deleted = createRoute({
    method: 'get',
    path: '/{id}/deleted',
    tags,
    summary: 'Recently deleted files, newest first (viewer)',
    description:
      'Files whose last version is a deletion (not a move) and that were not created again. Restore one with `POST /{id}/restore` and its `restoreVersion`.',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: {
      params: ProjectParams,
      query: z.object({
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(200)
          .openapi({ type: 'integer', default: 200 }),
      }),
    },
    responses: {
      200: jsonResponse(
        z.object({ files: z.array(DeletedFileSchema) }),
        'Deleted files, most recent deletion first',
      ),
      ...errorResponses(400, 401, 404),
    },
  });

  const search = createRoute({
    method: 'get',
    path: '/{id}/search',
    tags,
    summary: 'Search file contents and paths (viewer)',
    description:
      'Words match whole or as a prefix, camelCase parts and punctuation-separated parts count alone (`user` finds `getUser`, `state` finds `this.state`). Path matches come first with `line: 0` and `kind: "path"`; then lines (`kind: "content"`): those containing the whole query, or in files without one, a word of it.',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: {
      params: ProjectParams,
      query: z.object({
        q: text().min(1).max(200),
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(200)
          .openapi({ type: 'integer', default: 200 }),
      }),
    },
    responses: {
      200: jsonResponse(
        z.object({
          results: z.array(
            z.object({
              path: z.string(),
              line: z.number().int().openapi({ description: '1-based; 0 for a path match' }),
              preview: z.string().openapi({ description: 'The line (first 300 characters)' }),
              kind: z.enum(['content', 'path']),
            }),
          ),
          truncated: z.boolean(),
        }),
        'Matches',
      ),
      ...errorResponses(400, 401, 404),
    },
  });

  const archive = createRoute({
    method: 'get',
    path: '/{id}/archive',
    tags,
    summary: 'Download the project as a zip archive (viewer)',
    security: bearerSecurity,
    middleware: [requireAuth, access('viewer')] as const,
    request: { params: ProjectParams },
    responses: {
      200: {
        description: 'The zip, streamed',
        content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
      },
      ...errorResponses(401, 404),
    },
  });

  const importZip = createRoute({
    method: 'post',
    path: '/{id}/import',
    tags,
    summary: 'Import a zip archive (editor)',
    description:
      'The body is the archive itself. It is checked whole before anything is written: symbolic links, unsafe paths (absolute, `..`, backslashes), encrypted entries, duplicates, too many entries, too many bytes or a zip-bomb compression ratio refuse it (400/413) and nothing changes. Files are written in one transaction with source `import`.',
    security: bearerSecurity,
    middleware: [requireAuth, access('editor')] as const,
    request: {
      params: ProjectParams,
      query: z.object({
        strip: z.coerce
          .number()
          .int()
          .min(0)
          .max(8)
          .default(0)
          .openapi({ type: 'integer', default: 0, description: 'Leading directories to drop' }),
        into: z
          .string()
          .optional()
          .openapi({
            description:
              'The folder to import into (a project path, e.g. `assets/icons`; created as ' +
              'needed): each entry is written under it. Default: the project root',
          }),
      }),
      body: {
        required: true,
        content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
      },
    },
    responses: {
      200: jsonResponse(
        z.object({
          imported: z.number().int().openapi({ description: 'Files in the archive' }),
          changed: z.number().int().openapi({ description: 'Files whose content changed' }),
        }),
        'Imported',
      ),
      ...errorResponses(400, 401, 403, 404, 409, 413),
    },
  });

  return {
    list,
    read,
    write,
    remove,
    move,
    history,
    deleted,
    restore,
    search,
    archive,
    importZip,
  };
}

/** Request-body size limits the files routes need beyond the JSON default. */
export function fileBodyLimits(
  files: FilesService,
): { method: string; path: RegExp; maxBytes: number }[] {
  return [
    // JSON-escaped text can take twice its size; base64 takes 4/3.
    {
      method: 'PUT',
      path: /^\/api\/projects\/[^/]+\/files\//,
      maxBytes: files.maxFileBytes * 2 + 1024 * 1024,
    },
    { method: 'POST', path: /^\/api\/projects\/[^/]+\/import$/, maxBytes: files.maxArchiveBytes },
  ];
}

/** /api/projects/{id}/files, move, history, restore, search, archive, import. */
export function createFilesRoutes(deps: {
  files: FilesService;
  requireAuth: MiddlewareHandler;
  projectAccess: ProjectAccess;
}): OpenAPIHono {
  const { files } = deps;
  const r = fileRoutes(deps.requireAuth, deps.projectAccess);
  const app = createRouter();
  for (const route of [r.read, r.write, r.remove, r.history]) documentWildcard(app, route);

  return app
    .openapi(r.list, async (c) => {
      const { dir } = c.req.valid('query');
      const list = await files.list(c.var.project.id, dir === undefined ? {} : { dir });
      return c.json({ files: list, directories: directoriesOf(list) }, 200);
    })
    .openapi(wildcard(r.read), async (c) => {
      return c.json(await files.read(c.var.project.id, c.req.valid('param').path), 200);
    })
    .openapi(
      wildcard(r.write),
      async (c) => {
        const body = c.req.valid('json');
        const outcome = await files.write(
          c.var.project.id,
          c.req.valid('param').path,
          body.content,
          {
            source: 'user',
            userId: c.var.auth.userId,
            ...(body.encoding ? { encoding: body.encoding } : {}),
            ...(body.baseVersion !== undefined ? { baseVersion: body.baseVersion } : {}),
          },
        );
        return c.json(
          { file: outcome.file!, changed: outcome.changed },
          outcome.created ? 201 : 200,
        );
      },
      // File text may hold NUL (stored as base64); everything else still goes through text().
      validationHook({ allowNul: true }),
    )
    .openapi(wildcard(r.remove), async (c) => {
      const { baseVersion } = c.req.valid('query');
      await files.delete(c.var.project.id, c.req.valid('param').path, {
        source: 'user',
        userId: c.var.auth.userId,
        ...(baseVersion !== undefined ? { baseVersion } : {}),
      });
      return c.body(null, 204);
    })
    .openapi(r.move, async (c) => {
      const { from, to, baseVersion } = c.req.valid('json');
      const outcomes = await files.move(c.var.project.id, from, to, {
        source: 'user',
        userId: c.var.auth.userId,
        ...(baseVersion !== undefined ? { baseVersion } : {}),
      });
      const moved = filesOf(outcomes);
      return c.json({ ...(moved.length === 1 ? { file: moved[0] } : {}), files: moved }, 200);
    })
    .openapi(wildcard(r.history), async (c) => {
      const { path } = c.req.valid('param');
      const { version, limit, before } = c.req.valid('query');
      if (version !== undefined) {
        return c.json(await files.readVersion(c.var.project.id, path, version), 200);
      }
      const versions = await files.history(c.var.project.id, path, {
        limit,
        ...(before !== undefined ? { before } : {}),
      });
      return c.json({ versions }, 200);
    })
    .openapi(r.deleted, async (c) => {
      const { limit } = c.req.valid('query');
      return c.json({ files: await files.deleted(c.var.project.id, { limit }) }, 200);
    })
    .openapi(r.restore, async (c) => {
      const { path, version } = c.req.valid('json');
      const outcome = await files.restore(c.var.project.id, path, version, {
        source: 'user',
        userId: c.var.auth.userId,
      });
      return c.json({ file: outcome.file!, changed: outcome.changed }, 200);
    })
    .openapi(r.search, async (c) => {
      const { q, limit } = c.req.valid('query');
      return c.json(await files.search(c.var.project.id, q, { limit }), 200);
    })
    .openapi(r.archive, async (c) => {
      const project = c.var.project;
      const stream = files.archive(project.id);
      c.header('Content-Type', 'application/zip');
      c.header('Content-Disposition', `attachment; filename="${archiveName(project.name)}.zip"`);
      return c.body(Readable.toWeb(stream) as ReadableStream, 200);
    })
    .openapi(r.importZip, async (c) => {
      const { strip, into } = c.req.valid('query');
      const body = Buffer.from(await c.req.arrayBuffer());
      if (body.length === 0) throw errors.invalid('The body must be a zip archive');
      const result = await files.importZip(c.var.project.id, body, {
        userId: c.var.auth.userId,
        strip,
        into,
      });
      return c.json(result, 200);
    });
}

function filesOf(outcomes: ChangeOutcome[]): FileMeta[] {
  return outcomes.flatMap((o) => (o.file ? [o.file] : []));
}

/** Every directory implied by the paths, in path order. */
function directoriesOf(list: FileMeta[]): string[] {
  const dirs = new Set<string>();
  for (const f of list) {
    for (let i = f.path.indexOf('/'); i !== -1; i = f.path.indexOf('/', i + 1)) {
      dirs.add(f.path.slice(0, i));
    }
  }
  return [...dirs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** A file name for the download: the project's name, safe in a header. */
function archiveName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'project';
}
