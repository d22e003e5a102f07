import { useQueryClient } from '@tanstack/react-query';
import { fileChangesOf, type Schemas } from '@vaporform/sdk';
import { useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useApp } from '../context.tsx';
import { ApiError, errorCode, errorMessage, unwrap } from '../lib/client.ts';
import { ProjectSocket, type ProjectEvent, type SocketState } from '../lib/project-socket.ts';
import { useApiQueries, useProjectEventInvalidation } from '../lib/queries.ts';
import { navigate } from '../lib/router.ts';
import { AccountMenu } from './account-menu.tsx';

type Architecture = Schemas['Project']['type'];
type ProjectConfig = Schemas['ProjectConfig'];

// The seeds' ProjectConfig choices (seeds/000), with the usual options of each.
const architectures: { id: Architecture; name: string; text: string }[] = [
  { id: 'monolithic', name: 'Monolithic', text: 'One app and one server: simplest to run.' },
  { id: 'pwa', name: 'Progressive web app', text: 'Installable, works offline, front-end first.' },
  { id: 'microservices', name: 'Microservices', text: 'Several small services behind one API.' },
];
const languages = ['javascript', 'typescript', 'python', 'go', 'java', 'rust', 'none'];
const backendFrameworks: Record<string, string[]> = {
  javascript: ['node:http', 'express', 'fastify', 'hono', 'nestjs'],
  typescript: ['hono', 'express', 'fastify', 'nestjs'],
  python: ['fastapi', 'django', 'flask'],
  go: ['net/http', 'gin', 'echo', 'fiber'],
  java: ['spring-boot', 'quarkus'],
  rust: ['axum', 'actix-web'],
  none: ['none'],
};
const baasOptions = ['supabase', 'firebase', 'appwrite', 'pocketbase'];
const frontendFrameworks = ['react', 'vue', 'svelte', 'angular', 'solid', 'html', 'none'];
const cssFrameworks = ['tailwindcss', 'bootstrap', 'bulma', 'material-ui', 'chakra-ui', 'sass'];
const buildTools = ['vite', 'webpack', 'esbuild', 'parcel', 'none'];
const databases = ['postgresql', 'mysql', 'sqlite', 'mongodb', 'redis', 'supabase'];

/** The project wizard, and (with `progressOf`) the progress of a project being set up. */
export function Wizard(props: { progressOf?: string }) {
  if (props.progressOf) return <Progress projectId={props.progressOf} />;
  return <WizardForm />;
}

function WizardForm() {
  const { api } = useApp();
  const [step, setStep] = useState(0);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [functionality, setFunctionality] = useState('');
  const [architecture, setArchitecture] = useState<Architecture>('monolithic');
  const [language, setLanguage] = useState('javascript');
  const [framework, setFramework] = useState('node:http');
  const [baas, setBaas] = useState<string | null>(null);
  const [frontend, setFrontend] = useState('html');
  const [css, setCss] = useState<string[]>([]);
  const [buildTool, setBuildTool] = useState('none');
  const [dbs, setDbs] = useState<string[]>([]);
  const [apis, setApis] = useState('');
  const [packages, setPackages] = useState('');
  const [source, setSource] = useState<'template' | 'ai'>('template');
  const [templateId, setTemplateId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const $api = useApiQueries();
  const gallery = $api.useQuery('get', '/api/templates');
  const templates = useMemo(() => gallery.data?.templates ?? [], [gallery.data]);
  useEffect(() => setTemplateId((t) => t ?? templates[0]?.id ?? null), [templates]);

  const config: ProjectConfig = useMemo(
    () => ({
      architecture,
      backend: { language, framework: baas ?? framework, isBaaS: baas !== null },
      frontend: { framework: frontend, cssFrameworks: css, buildTool },
      database: dbs,
      integrations: { apis: splitList(apis), packages: splitList(packages) },
      ...(functionality.trim() ? { functionality: functionality.trim() } : {}),
    }),
    [
      architecture,
      language,
      framework,
      baas,
      frontend,
      css,
      buildTool,
      dbs,
      apis,
      packages,
      functionality,
    ],
  );

  // A template decides the stack: its path skips the stack steps, which only the assistant uses.
  const steps: WizardStep[] =
    source === 'template'
      ? ['Basics', 'Start from']
      : ['Basics', 'Start from', 'Architecture', 'Back end', 'Front end', 'Data & integrations'];
  const current = steps[step] ?? 'Start from';

  async function create(e: FormEvent) {
    e.preventDefault();
    if (step < steps.length - 1) {
      setStep(step + 1);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const { project } = unwrap(
        await api.client.POST('/api/projects', {
          body: {
            name: name.trim(),
            description: description.trim(),
            type: architecture,
            config,
            ...(source === 'template' && templateId ? { templateId } : {}),
          },
        }),
      );
      if (source === 'ai') {
        const prompt = [description, functionality].filter((s) => s.trim()).join('\n\n');
        sessionStorage.setItem(`vf.describe:${project.id}`, prompt || name);
        // With a functionality the server queues the assistant's `create` itself: once only.
        if (functionality.trim()) sessionStorage.setItem(`vf.describe-queued:${project.id}`, '1');
      }
      navigate(`/projects/${project.id}/creating`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        setStep(0);
        setError('You already have a project with this name. Choose another name.');
      } else setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="page">
      <header className="topbar">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate('/');
          }}
        >
          <span className="brand-mark" aria-hidden="true">
            V
          </span>
          Vaporform
        </a>
        <div className="spacer" />
        <AccountMenu />
      </header>
      <main className="wizard">
        <h1>New project</h1>
        <ol className="steps" aria-label="Steps">
          {steps.map((s, i) => (
            <li key={s} className={i === step ? 'current' : i < step ? 'done' : ''}>
              <button
                type="button"
                className="linklike"
                onClick={() => i < step && setStep(i)}
                disabled={i > step}
              >
                {i + 1}. {s}
              </button>
            </li>
          ))}
        </ol>
        <form className="wizard-card" onSubmit={create} aria-label={steps[step]}>
          {current === 'Basics' && (
            <>
              <label>
                Project name
                <input
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                  required
                  maxLength={255}
                  autoFocus
                  name="name"
                />
              </label>
              <label>
                Description
                <input
                  value={description}
                  onChange={(e) => setDescription(e.target.value)}
                  maxLength={10000}
                  name="description"
                  placeholder="A one-line summary"
                />
              </label>
              <label>
                Functionality
                <textarea
                  rows={5}
                  value={functionality}
                  onChange={(e) => setFunctionality(e.target.value)}
                  name="functionality"
                  placeholder="What should the app do? Pages, features, users…"
                />
              </label>
            </>
          )}
          {current === 'Architecture' && (
            <fieldset className="choices">
              <legend>Architecture</legend>
              {architectures.map((a) => (
                <label key={a.id} className={`choice ${architecture === a.id ? 'selected' : ''}`}>
                  <input
                    type="radio"
                    name="architecture"
                    value={a.id}
                    checked={architecture === a.id}
                    onChange={() => setArchitecture(a.id)}
                  />
                  <strong>{a.name}</strong>
                  <span className="muted small">{a.text}</span>
                </label>
              ))}
            </fieldset>
          )}
          {current === 'Back end' && (
            <>
              <Select
                label="Language"
                value={language}
                options={languages}
                onChange={(v) => (
                  setLanguage(v),
                  setFramework(backendFrameworks[v]?.[0] ?? 'none')
                )}
              />
              <Select
                label="Framework"
                value={framework}
                options={backendFrameworks[language] ?? []}
                onChange={setFramework}
                disabled={baas !== null}
              />
              <label className="inline">
                <input
                  type="checkbox"
                  checked={baas !== null}
                  onChange={(e) => setBaas(e.target.checked ? baasOptions[0]! : null)}
                />
                Use a backend-as-a-service instead
              </label>
              {baas !== null && (
                <Select
                  label="Backend-as-a-service"
                  value={baas}
                  options={baasOptions}
                  onChange={setBaas}
                />
              )}
            </>
          )}
          {current === 'Front end' && (
            <>
              <Select
                label="Front-end framework"
                value={frontend}
                options={frontendFrameworks}
                onChange={setFrontend}
              />
              <Checks
                legend="CSS frameworks"
                options={cssFrameworks}
                value={css}
                onChange={setCss}
              />
              <Select
                label="Build tool"
                value={buildTool}
                options={buildTools}
                onChange={setBuildTool}
              />
            </>
          )}
          {current === 'Data & integrations' && (
            <>
              <Checks legend="Databases" options={databases} value={dbs} onChange={setDbs} />
              <label>
                APIs to integrate (comma-separated)
                <input
                  value={apis}
                  onChange={(e) => setApis(e.target.value)}
                  placeholder="stripe, sendgrid"
                  name="apis"
                />
              </label>
              <label>
                Packages (comma-separated)
                <input
                  value={packages}
                  onChange={(e) => setPackages(e.target.value)}
                  placeholder="zod, date-fns"
                  name="packages"
                />
              </label>
            </>
          )}
          {current === 'Start from' && (
            <>
              <fieldset className="choices two">
                <legend>Start from</legend>
                <label className={`choice ${source === 'template' ? 'selected' : ''}`}>
                  <input
                    type="radio"
                    name="source"
                    checked={source === 'template'}
                    onChange={() => setSource('template')}
                  />
                  <strong>A template</strong>
                  <span className="muted small">
                    Ready-made files; the container starts at once.
                  </span>
                </label>
                <label className={`choice ${source === 'ai' ? 'selected' : ''}`}>
                  <input
                    type="radio"
                    name="source"
                    checked={source === 'ai'}
                    onChange={() => setSource('ai')}
                  />
                  <strong>Describe it to the AI</strong>
                  <span className="muted small">
                    The assistant writes the app from your description.
                  </span>
                </label>
              </fieldset>
              {source === 'template' && (
                <fieldset className="templates">
                  <legend>Template</legend>
                  {templates.map((t) => (
                    <label key={t.id} className={`choice ${templateId === t.id ? 'selected' : ''}`}>
                      <input
                        type="radio"
                        name="template"
                        value={t.id}
                        checked={templateId === t.id}
                        onChange={() => setTemplateId(t.id)}
                      />
                      <strong>{t.name}</strong>
                      <span className="muted small">{t.description}</span>
                      <span className="tags">
                        {t.tags.slice(0, 4).map((tag) => (
                          <span key={tag} className="tag">
                            {tag}
                          </span>
                        ))}
                      </span>
                    </label>
                  ))}
                </fieldset>
              )}
              {source === 'ai' && (
                <p className="muted">
                  The assistant gets your description, functionality and the stack you choose next.
                  {!description.trim() &&
                    !functionality.trim() &&
                    ' Add a description or functionality in step 1 first.'}
                </p>
              )}
            </>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <div className="row end">
            {step > 0 ? (
              <button type="button" onClick={() => setStep(step - 1)}>
                Back
              </button>
            ) : (
              <button type="button" onClick={() => navigate('/')}>
                Cancel
              </button>
            )}
            <button
              className="primary"
              type="submit"
              disabled={busy || (step === 0 && !name.trim())}
            >
              {step < steps.length - 1 ? 'Next' : busy ? 'Creating…' : 'Create project'}
            </button>
          </div>
        </form>
      </main>
    </div>
  );
}

function Select(props: {
  label: string;
  value: string;
  options: string[];
  onChange(v: string): void;
  disabled?: boolean;
}) {
  return (
    <label>
      {props.label}
      <select
        value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
        disabled={props.disabled}
      >
        {props.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

function Checks(props: {
  legend: string;
  options: string[];
  value: string[];
  onChange(v: string[]): void;
}) {
  return (
    <fieldset className="checks">
      <legend>{props.legend}</legend>
      {props.options.map((o) => (
        <label key={o} className="inline">
          <input
            type="checkbox"
            checked={props.value.includes(o)}
            onChange={(e) =>
              props.onChange(
                e.target.checked ? [...props.value, o] : props.value.filter((x) => x !== o),
              )
            }
          />
          {o}
        </label>
      ))}
    </fieldset>
  );
}

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .slice(0, 50);
}

type StepState = 'pending' | 'active' | 'done' | 'failed';

type WizardStep =
  'Basics' | 'Start from' | 'Architecture' | 'Back end' | 'Front end' | 'Data & integrations';

/**
 * Real steps of a project's set-up, driven by the project WebSocket. Nothing is polled: the
 * template's files are written before `POST /api/projects` answers, so the project as read once
 * (again whenever the socket reconnects, and on `container_status`) is the picture until the
 * socket's `file_changed`, `container_status` and `claude-*` events move it on.
 */
function Progress(props: { projectId: string }) {
  const { api } = useApp();
  const $api = useApiQueries();
  const queryClient = useQueryClient();
  const id = props.projectId;
  const [written, setWritten] = useState<string[]>([]);
  const [container, setContainer] = useState<string>('pending');
  const [devUp, setDevUp] = useState(false);
  const [aiNote, setAiNote] = useState<string | null>(null);
  // What the assistant is writing, as it writes it (its last few thousand characters).
  const [aiText, setAiText] = useState('');
  const [aiDone, setAiDone] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [socket, setSocket] = useState<ProjectSocket | null>(null);
  const [socketState, setSocketState] = useState<SocketState>('connecting');
  const describe = useRef(sessionStorage.getItem(`vf.describe:${id}`));
  const started = useRef(false);
  useProjectEventInvalidation(socket, id);
  const byId = { params: { path: { id } } };
  const projectQuery = $api.useQuery('get', '/api/projects/{id}', byId, { retry: false });
  const project = projectQuery.data?.project;
  const name = project?.name ?? '';
  const files = project?.totalFiles ?? 0;

  useEffect(() => {
    const socket = new ProjectSocket(api, id);
    const offState = socket.onState((state) => {
      setSocketState(state);
      // What happened before the socket opened (or while it was down) is read once.
      if (state === 'open') {
        void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}'] });
        void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}/chat'] });
      }
    });
    const off = socket.on((e: ProjectEvent) => {
      const changed = fileChangesOf(e).map((c) => c.path);
      if (changed.length) {
        setWritten((w) => [...w, ...changed.filter((p) => !w.includes(p))].slice(-200));
      } else if (e.type === 'container_status') {
        const { status, health } = e.data;
        setContainer(status);
        if (
          health === 'healthy' ||
          (status === 'running' && health !== 'starting' && health !== 'unhealthy')
        )
          setDevUp(true);
        if (status === 'error') setFailure(e.data.reason ?? 'The container failed to start');
      } else if (e.type === 'claude-progress' && e.data.stage === 'text') {
        const delta = e.data.message;
        setAiText((t) => (t + delta).slice(-4000));
      } else if (e.type === 'claude-progress') {
        setAiNote(e.data.message || 'The assistant is working…');
        // A tool ran between two pieces of text: they are separate paragraphs.
        if (e.data.stage === 'tool') setAiText((t) => (t && !t.endsWith('\n') ? `${t}\n\n` : t));
      } else if (e.type === 'claude-error') {
        setFailure(e.data.error || 'The assistant failed');
      } else if (e.type === 'claude-response') {
        setAiNote('The assistant finished writing the app.');
        setAiDone(true);
        // Its files are counted in the project (a bulk write may not list each one).
        void queryClient.invalidateQueries({ queryKey: ['get', '/api/projects/{id}'] });
      }
    });
    socket.start();
    setSocket(socket);
    return () => {
      off();
      offState();
      socket.close();
    };
  }, [api, id, queryClient]);

  // Opened again (a reload, a second tab) after the assistant finished: its answer is in the
  // project's chat, where the socket's `claude-response` of that run can no longer be seen.
  const chatHistory = $api.useQuery(
    'get',
    '/api/projects/{id}/chat',
    { params: { path: { id }, query: { limit: 50 } } },
    { enabled: Boolean(describe.current) && !aiDone, retry: false },
  );
  useEffect(() => {
    const answer = chatHistory.data?.messages.findLast((m) => m.role === 'assistant');
    if (!answer) return;
    if (answer.error) setFailure(answer.error);
    else setAiDone(true);
  }, [chatHistory.data]);

  useEffect(() => {
    if (errorCode(projectQuery.error) === 'not_found')
      setFailure('This project does not exist (or you are not a member).');
  }, [projectQuery.error]);

  // The project as read: a failed set-up, a dev server already up, and the next step to start.
  useEffect(() => {
    if (!project) return;
    if (project.status === 'error') setFailure('Project set-up failed');
    if (project.status === 'running' && project.health === 'healthy') {
      setContainer('running');
      setDevUp(true);
    }
    if (started.current) return;
    const client = api.client;
    if (describe.current && sessionStorage.getItem(`vf.describe-queued:${id}`)) {
      started.current = true;
    } else if (describe.current) {
      started.current = true;
      const body = { projectId: id, message: describe.current, type: 'create' as const };
      void client
        .POST('/api/claude/process', { body })
        .then(unwrap)
        .catch((err: unknown) => setFailure(errorMessage(err)));
    } else if (Math.max(project.totalFiles, written.length) > 0) {
      started.current = true;
      void client.POST('/api/containers/{projectId}/start', {
        params: { path: { projectId: id } },
      });
    }
  }, [api, id, project, written.length]);

  // Done: the IDE opens by itself (replacing this page, so Back does not return to it).
  // The assistant's set-up is done when it says so (claude-response): the container may run
  // long before, so the page does not leave while the assistant is still writing.
  const aiFinished = !describe.current || aiDone;
  const ready = devUp && aiFinished && !failure;
  useEffect(() => {
    if (!ready) return;
    const t = setTimeout(() => navigate(`/projects/${id}`, { replace: true }), 800);
    return () => clearTimeout(t);
  }, [ready, id]);

  const fileCount = Math.max(files, written.length);
  const containerStarting =
    ['creating', 'starting', 'installing', 'pending'].includes(container) && fileCount > 0;
  const stepsList: { label: string; state: StepState; detail?: ReactNode }[] = [
    { label: 'Project created', state: 'done' },
    ...(describe.current
      ? [
          {
            label: 'The assistant writes the app',
            state: (aiFinished ? 'done' : failure ? 'failed' : 'active') as StepState,
            detail: (
              <>
                {aiNote}
                {aiText && (
                  <pre className="ai-stream" aria-label="What the assistant is writing">
                    {aiText}
                  </pre>
                )}
              </>
            ),
          },
        ]
      : []),
    {
      label: `Files written${fileCount ? ` (${fileCount})` : ''}`,
      state: fileCount > 0 ? 'done' : failure ? 'failed' : 'active',
      detail: written.length > 0 && (
        <span className="muted small">{written.slice(-3).join(', ')}</span>
      ),
    },
    {
      label: 'Container starting',
      state:
        devUp || container === 'running'
          ? 'done'
          : failure
            ? 'failed'
            : containerStarting || container !== 'pending'
              ? 'active'
              : 'pending',
      detail: container !== 'pending' && <span className="muted small">{container}</span>,
    },
    {
      label: 'Dev server up',
      state: devUp ? 'done' : failure ? 'failed' : container === 'running' ? 'active' : 'pending',
    },
  ];

  return (
    <div className="page">
      <main className="wizard">
        <h1>Setting up {name || 'your project'}</h1>
        <ol className="progress" aria-label="Set-up progress">
          {stepsList.map((s) => (
            <li key={s.label} className={`progress-${s.state}`} data-state={s.state}>
              <span className="progress-icon" aria-hidden="true">
                {s.state === 'done'
                  ? '✓'
                  : s.state === 'failed'
                    ? '✕'
                    : s.state === 'active'
                      ? '●'
                      : '○'}
              </span>
              <span>
                {s.label}
                <span className="sr-only"> ({s.state})</span>
                {s.detail && <div>{s.detail}</div>}
              </span>
            </li>
          ))}
        </ol>
        {failure && (
          <p className="error" role="alert">
            {failure}
          </p>
        )}
        {ready && (
          <p className="ok" role="status">
            Ready: opening the IDE…
          </p>
        )}
        <p className="muted small">Live updates: {socketState}</p>
        <div className="row">
          <button className="primary" onClick={() => navigate(`/projects/${id}`)} autoFocus={devUp}>
            {devUp ? 'Open in IDE' : 'Open in IDE now'}
          </button>
          <button onClick={() => navigate('/')}>Back to projects</button>
        </div>
      </main>
    </div>
  );
}
