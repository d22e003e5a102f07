/**
 * The `vaporform` command (API.md › Command line): a thin layer over the generated client.
 * Every read command takes `--json`; an API error prints the contract's message and exits 1.
 */
import { watch } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, CommanderError, Option } from 'commander';
import {
  VaporformApiError,
  createVaporformClient,
  toApiError,
  unwrap,
  type Schemas,
} from '@vaporform/sdk';
import { CredentialStore, configDir } from './credentials.ts';
import { pull, push, type SyncReport } from './files.ts';
import { Session, openSession, serverOrigin } from './session.ts';
import { readEvents } from './sse.ts';

/** Where the command reads and writes; the tests pass their own. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** All of stdin (the password when it is not a terminal). */
  readStdin: () => Promise<string>;
  isTty: boolean;
  env: NodeJS.ProcessEnv;
}

const processIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  readStdin: async () => {
    let text = '';
    for await (const chunk of process.stdin) text += String(chunk);
    return text;
  },
  isTty: Boolean(process.stdin.isTTY),
  env: process.env,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const store = new CredentialStore(configDir(io.env));
  const program = new Command('vaporform')
    .description('Vaporform from the command line')
    .addOption(new Option('--server <url>', 'server address (or VAPORFORM_URL)'))
    .addOption(new Option('--url <url>', 'same as --server').hideHelp())
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();

  const server = () => {
    const opts = program.opts<{ server?: string; url?: string }>();
    return serverOrigin(opts.server ?? opts.url, io.env);
  };
  const session = () => openSession(server(), store);
  const print = (json: boolean, value: unknown, human: () => string) =>
    io.stdout(json ? `${JSON.stringify(value, null, 2)}\n` : human());
  const project = async (s: Session, ref: string): Promise<Schemas['Project']> => {
    if (UUID.test(ref)) {
      return unwrap(await s.api.GET('/api/projects/{id}', { params: { path: { id: ref } } }))
        .project;
    }
    const { projects } = unwrap(await s.api.GET('/api/projects'));
    const found = projects.find((p) => p.name.toLowerCase() === ref.toLowerCase());
    if (!found) throw new VaporformApiError(404, 'not_found', `no project named "${ref}"`);
    return found;
  };

  program
    .command('login')
    .description('sign in (the password is read from stdin when it is not a terminal)')
    .requiredOption('--email <email>', 'account email')
    .option('--totp <code>', 'the authenticator code, when MFA is on')
    .action(async (opts: { email: string; totp?: string }) => {
      const origin = server();
      const password = io.isTty
        ? await prompt('Password: ', true)
        : (await io.readStdin()).replace(/\r?\n$/, '');
      const api = createVaporformClient({ baseUrl: origin });
      let totp = opts.totp;
      for (;;) {
        const result = await api.POST('/api/auth/login', {
          body: { email: opts.email, password, ...(totp ? { totp } : {}) },
        });
        if (result.response.ok) {
          const login = unwrap(result);
          store.set(origin, {
            token: login.token,
            refreshToken: login.refreshToken,
            expiresAt: Date.now() + login.expiresIn * 1000,
            email: login.user.email,
            userId: login.user.id,
          });
          io.stdout(`Signed in to ${origin} as ${login.user.email}\n`);
          return;
        }
        const err = toApiError(result.response.status, result.error);
        if (err.code === 'mfa_required' && !totp && io.isTty) {
          totp = await prompt('Authenticator code: ', false);
          continue;
        }
        throw err;
      }
    });

  program
    .command('logout')
    .description('sign out: the session stops working on the server too')
    .action(async () => {
      const s = session();
      const result = await s.api.POST('/api/auth/logout', {
        body: { refreshToken: s.refreshToken },
      });
      store.set(s.server, undefined);
      if (!result.response.ok && result.response.status !== 401) unwrap(result);
      io.stdout(`Signed out of ${s.server}\n`);
    });

  program
    .command('whoami')
    .description('the signed-in user')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const { user } = unwrap(await session().api.GET('/api/auth/me'));
      print(!!opts.json, user, () => `${user.email} (${user.name})\n`);
    });

  const projects = program.command('projects').description('your projects');
  projects
    .command('ls')
    .description('list the projects you are a member of')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const list = unwrap(await session().api.GET('/api/projects')).projects;
      print(!!opts.json, list, () =>
        list.map((p) => `${p.id}  ${p.name}  ${p.status}  ${p.role}\n`).join(''),
      );
    });
  projects
    .command('create <name>')
    .description('create a project from a template or from a description')
    .option('--template <id>', 'template id (see the IDE’s wizard or GET /api/templates)')
    .option('--describe <text>', 'describe the app: the assistant generates it')
    .option('--json', 'JSON output')
    .action(
      async (name: string, opts: { template?: string; describe?: string; json?: boolean }) => {
        const s = session();
        let created = unwrap(
          await s.api.POST('/api/projects', {
            body: {
              name,
              ...(opts.template ? { templateId: opts.template } : {}),
              // The assistant generates the app from config.functionality (the wizard's path).
              ...(opts.describe
                ? { description: opts.describe, config: { functionality: opts.describe } }
                : {}),
            },
          }),
        ).project;
        if (opts.describe && !opts.template) created = await waitWhileCreating(s, created, io);
        print(!!opts.json, created, () => `Created ${created.name} (${created.id})\n`);
        if (created.status === 'error') {
          throw new VaporformApiError(0, 'error', `the project ${created.name} failed to generate`);
        }
      },
    );
  projects
    .command('rm <project>')
    .description('delete a project (owner only)')
    .option('--yes', 'do not ask')
    .action(async (ref: string, opts: { yes?: boolean }) => {
      const s = session();
      const p = await project(s, ref);
      if (!opts.yes) {
        if (!io.isTty) throw new VaporformApiError(0, 'confirm', 'pass --yes to delete');
        const answer = await prompt(`Delete ${p.name} and all its files? [y/N] `, false);
        if (!/^y(es)?$/i.test(answer.trim())) return;
      }
      const result = await s.api.DELETE('/api/projects/{id}', {
        params: { path: { id: p.id } },
      });
      if (!result.response.ok) unwrap(result);
      io.stdout(`Deleted ${p.name}\n`);
    });

  const files = program.command('files').description('a project ⇄ a local folder');
  const syncAction =
    (kind: 'pull' | 'push') =>
    async (ref: string, dir: string, opts: { json?: boolean }): Promise<void> => {
      const s = session();
      const p = await project(s, ref);
      const report = await (kind === 'pull' ? pull : push)(s, p.id, dir);
      print(!!opts.json, report, () => describeSync(kind, report));
      if (report.conflicts.length) {
        throw new VaporformApiError(
          409,
          'conflict',
          `${report.conflicts.length} file(s) changed in the project since your last pull: ` +
            `${report.conflicts.join(', ')}; pull, merge, push again`,
        );
      }
    };
  files
    .command('pull <project> <dir>')
    .description('copy the project’s files into a folder')
    .option('--json', 'JSON output')
    .action(syncAction('pull'));
  files
    .command('push <project> <dir>')
    .description('send the folder’s changes since the last pull (deletions included)')
    .option('--json', 'JSON output')
    .option('--watch', 'keep pushing each change of the folder until interrupted')
    .action(async (ref: string, dir: string, opts: { json?: boolean; watch?: boolean }) => {
      await syncAction('push')(ref, dir, opts);
      if (!opts.watch) return;
      const s = session();
      const p = await project(s, ref);
      await watchAndPush(
        dir,
        async () => {
          const report = await push(s, p.id, dir);
          if (report.written.length || report.deleted.length || report.conflicts.length) {
            print(!!opts.json, report, () => describeSync('push', report));
          }
        },
        io,
      );
    });

  const containerCommand = (verb: 'start' | 'stop') =>
    program
      .command(`${verb} <project>`)
      .description(`${verb} the project’s container`)
      .option('--json', 'JSON output')
      .action(async (ref: string, opts: { json?: boolean }) => {
        const s = session();
        const p = await project(s, ref);
        const path =
          verb === 'start'
            ? ('/api/containers/{projectId}/start' as const)
            : ('/api/containers/{projectId}/stop' as const);
        const { container } = unwrap(
          await s.api.POST(path, { params: { path: { projectId: p.id } } }),
        );
        print(!!opts.json, container, () => `${p.name}: ${container?.status ?? 'stopped'}\n`);
      });
  containerCommand('start');
  containerCommand('stop');
  program
    .command('status <project>')
    .description('the project and its container')
    .option('--json', 'JSON output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const s = session();
      const p = await project(s, ref);
      const result = await s.api.GET('/api/containers/{projectId}', {
        params: { path: { projectId: p.id } },
      });
      const container = result.response.status === 404 ? null : unwrap(result).container;
      print(!!opts.json, { project: p, container }, () =>
        [
          `${p.name} (${p.id})`,
          `  project:   ${p.status}`,
          `  container: ${container?.status ?? 'none'}`,
          ...(container?.serviceUrl ? [`  service:   ${container.serviceUrl}`] : []),
        ]
          .map((l) => `${l}\n`)
          .join(''),
      );
    });
  program
    .command('logs <project>')
    .description('the dev server’s output')
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <n>', 'lines of history (default 200)')
    .action(async (ref: string, opts: { follow?: boolean; tail?: string }) => {
      const s = session();
      const p = await project(s, ref);
      const query = new URLSearchParams({ follow: opts.follow ? 'true' : 'false' });
      if (opts.tail) query.set('tail', opts.tail);
      const res = await s.request(`/api/containers/${p.id}/logs?${query}`, {
        headers: { accept: 'text/event-stream' },
      });
      await failUnlessOk(res);
      for await (const e of readEvents(res.body!)) {
        if (e.event === 'end') break;
        if (e.event === 'log' || e.event === 'message') io.stdout(`${e.data}\n`);
      }
    });
  program
    .command('open <project>')
    .description('print the preview URL, with its short-lived token')
    .option('--json', 'JSON output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const s = session();
      const p = await project(s, ref);
      const link = unwrap(
        await s.api.POST('/api/projects/{id}/preview-token', { params: { path: { id: p.id } } }),
      );
      print(!!opts.json, link, () => `${link.url}\n`);
    });

  program
    .command('chat <project> [message]')
    .description('ask the assistant; prints its answer and the files it changed')
    .option('--diff', 'print each change’s diff')
    .option('--revert <changesetId>', 'undo a turn’s changes (the id printed after it)')
    .option('--json', 'JSON output (after the turn ends)')
    .action(
      async (
        ref: string,
        message: string | undefined,
        opts: { diff?: boolean; json?: boolean; revert?: string },
      ) => {
        const s = session();
        const p = await project(s, ref);
        if (opts.revert) {
          const { reverted } = unwrap(
            await s.api.POST('/api/projects/{id}/changesets/{changesetId}/revert', {
              params: { path: { id: p.id, changesetId: opts.revert } },
              body: {},
            }),
          );
          print(
            !!opts.json,
            { reverted },
            () => `Reverted ${reverted.length} file(s): ${reverted.join(', ')}\n`,
          );
          return;
        }
        if (!message)
          throw new VaporformApiError(
            0,
            'invalid_request',
            'what should the assistant do? chat <project> "<message>"',
          );
        const res = await s.request(`/api/projects/${p.id}/chat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ message }),
        });
        await failUnlessOk(res);
        const turn = {
          text: '',
          tools: [] as { name: string; isError?: boolean }[],
          changes: [] as { path: string; operation: string; diff?: string }[],
          changesetId: null as string | null,
          messageId: null as string | null,
        };
        for await (const e of readEvents(res.body!)) {
          const data = e.data ? (JSON.parse(e.data) as ChatEventData) : {};
          if (e.event === 'text') {
            turn.text += String(data.delta ?? '');
            if (!opts.json) io.stdout(String(data.delta ?? ''));
          } else if (e.event === 'tool') {
            turn.tools.push({ name: String(data.name), isError: Boolean(data.isError) });
            if (!opts.json) io.stderr(`  · ${data.name}${data.isError ? ' (failed)' : ''}\n`);
          } else if (e.event === 'file_change') {
            turn.changes.push({
              path: String(data.path),
              operation: String(data.operation),
              diff: data.diff,
            });
          } else if (e.event === 'done') {
            turn.changesetId = data.changesetId ?? null;
            turn.messageId = data.messageId ?? null;
          } else if (e.event === 'error') {
            throw new VaporformApiError(0, String(data.code), String(data.message));
          }
        }
        if (opts.json) {
          io.stdout(`${JSON.stringify(turn, null, 2)}\n`);
          return;
        }
        if (turn.text && !turn.text.endsWith('\n')) io.stdout('\n');
        if (turn.changes.length) {
          io.stdout(
            `\nChanged files${turn.changesetId ? ` (changeset ${turn.changesetId})` : ''}:\n`,
          );
          for (const c of turn.changes) {
            io.stdout(`  ${operationMark(c.operation)} ${c.path}\n`);
            if (opts.diff && c.diff) io.stdout(`${c.diff}\n`);
          }
        }
      },
    );

  const env = program.command('env').description('the project’s environment variables');
  env
    .command('set <project> <assignments...>')
    .description('set NAME=value (NAME= removes it); values are never shown again')
    .action(async (ref: string, assignments: string[]) => {
      const vars: Record<string, string | null> = {};
      for (const a of assignments) {
        const eq = a.indexOf('=');
        if (eq <= 0) throw new VaporformApiError(0, 'invalid_request', `expected NAME=value: ${a}`);
        vars[a.slice(0, eq)] = a.slice(eq + 1) === '' ? null : a.slice(eq + 1);
      }
      const s = session();
      const p = await project(s, ref);
      const { names } = unwrap(
        await s.api.PUT('/api/projects/{id}/env', {
          params: { path: { id: p.id } },
          body: { vars },
        }),
      );
      io.stdout(`${p.name}: ${names.length} variable(s): ${names.join(', ')}\n`);
    });
  env
    .command('ls <project>')
    .description('the variable names (values are never returned)')
    .option('--json', 'JSON output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const s = session();
      const p = await project(s, ref);
      const result = unwrap(
        await s.api.GET('/api/projects/{id}/env', { params: { path: { id: p.id } } }),
      );
      print(!!opts.json, result, () => result.names.map((n) => `${n}\n`).join(''));
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode;
    }
    if (err instanceof VaporformApiError) {
      io.stderr(`vaporform: ${err.message}\n`);
      return 1;
    }
    if (err instanceof TypeError && /fetch failed/.test(err.message)) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      io.stderr(`vaporform: cannot reach ${server()}${cause ? `: ${cause}` : ''}\n`);
      return 1;
    }
    io.stderr(`vaporform: ${(err as Error).message}\n`);
    return 1;
  }
}

/**
 * The chat stream's event payloads (`text`, `tool`, `file_change`, `done`, `error`): the
 * route's description in the OpenAPI document; the stream itself is not typed there.
 */
interface ChatEventData {
  delta?: string;
  name?: string;
  isError?: boolean;
  path?: string;
  operation?: string;
  diff?: string;
  changesetId?: string | null;
  messageId?: string | null;
  code?: string;
  message?: string;
}

/**
 * Runs `sync` after each burst of changes under `dir` (300 ms quiet), one run at a time, until
 * the process is interrupted. Errors are printed and watching goes on. "watching" is printed once
 * the watcher is attached, and one sync follows at once: a change made between the first push and
 * that moment is sent too, not lost.
 */
function watchAndPush(dir: string, sync: () => Promise<void>, io: Io): Promise<never> {
  return new Promise(() => {
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        running = running.then(sync).catch((err: unknown) => {
          io.stderr(`vaporform: ${(err as Error).message}\n`);
        });
      }, 300);
    };
    watch(dir, { recursive: true }, (_event, name) => {
      const first = String(name ?? '').split(/[\\/]/)[0];
      if (first === '.vaporform' || first === 'node_modules' || first === '.git') return;
      schedule();
    });
    io.stderr(`watching ${dir} (Ctrl+C to stop)\n`);
    schedule();
  });
}

/** Polls a project created from a description until the assistant has finished it. */
async function waitWhileCreating(
  s: Session,
  project: Schemas['Project'],
  io: Io,
): Promise<Schemas['Project']> {
  let current = project;
  let files = -1;
  const deadline = Date.now() + 15 * 60_000;
  while (current.status === 'creating' && Date.now() < deadline) {
    if (current.totalFiles !== files) {
      files = current.totalFiles;
      io.stderr(`  generating ${current.name}: ${files} file(s)\n`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    current = unwrap(
      await s.api.GET('/api/projects/{id}', { params: { path: { id: project.id } } }),
    ).project;
  }
  return current;
}

async function failUnlessOk(res: Response): Promise<void> {
  if (res.ok) return;
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  throw toApiError(res.status, body);
}

function describeSync(kind: 'pull' | 'push', r: SyncReport): string {
  const lines = [
    ...r.written.map((p) => `  ${kind === 'pull' ? '↓' : '↑'} ${p}\n`),
    ...r.deleted.map((p) => `  - ${p}\n`),
    ...r.conflicts.map((p) => `  ! ${p} (changed in the project)\n`),
  ];
  return (
    lines.join('') +
    `${kind === 'pull' ? 'Pulled' : 'Pushed'} ${r.written.length} file(s), ` +
    `deleted ${r.deleted.length}, ${r.unchanged} unchanged\n`
  );
}

function operationMark(operation: string): string {
  return operation === 'create' ? 'A' : operation === 'delete' ? 'D' : 'M';
}

/** Asks on the terminal; `hidden` does not echo what is typed. */
function prompt(question: string, hidden: boolean): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (hidden) {
      const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput;
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) =>
        write.call(rl, s.startsWith(question) ? question : '');
    }
    rl.question(question, (answer) => {
      rl.close();
      if (hidden) process.stderr.write('\n');
      resolve(answer);
    });
  });
}
