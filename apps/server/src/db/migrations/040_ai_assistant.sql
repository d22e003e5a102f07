-- AI assistant (issue 6): queued requests, changesets, chat history, richer interaction records.
--
--  * ai_requests: one row per POST /api/claude/process. The pg-boss job carries only the id;
--    the row is the source of truth for GET /api/claude/requests/:id. `attempt` and
--    `lease_until` fence a run: a worker that lost its lease (it died, or was presumed dead)
--    may not write any more, and a stale lease lets another instance retry the job.
--  * ai_changesets: the file changes of one AI turn. `request_id` is unique, so a retried job
--    reuses (after rolling back) its own changeset instead of adding a second one.
--  * ai_changeset_files: per path, the state before the turn first touched it and after its
--    last write (content kept for the revert and for ClaudeResponse.changes).
--  * ai_chat_messages: the project's chat, persisted (shared by its members).

CREATE TABLE ai_changesets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  request_id uuid,
  origin varchar(20) NOT NULL,
  status varchar(20) NOT NULL DEFAULT 'open',
  summary text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  reverted_at timestamptz,
  reverted_by uuid REFERENCES users(id) ON DELETE SET NULL,
  CONSTRAINT ai_changesets_request_key UNIQUE (request_id),
  CONSTRAINT ai_changesets_origin_check CHECK (origin IN ('chat', 'modify', 'process')),
  CONSTRAINT ai_changesets_status_check CHECK (status IN ('open', 'applied', 'reverted', 'discarded'))
);
CREATE INDEX idx_ai_changesets_project ON ai_changesets (project_id, created_at DESC);

CREATE TABLE ai_changeset_files (
  changeset_id uuid NOT NULL REFERENCES ai_changesets(id) ON DELETE CASCADE,
  file_path text NOT NULL,
  seq integer NOT NULL,
  before_content text,
  before_hash char(64),
  before_version integer,
  after_content text,
  after_hash char(64),
  after_version integer,
  diff text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (changeset_id, file_path)
);

CREATE TABLE ai_requests (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  request_type varchar(20) NOT NULL,
  message text NOT NULL,
  context jsonb NOT NULL DEFAULT '{}',
  status varchar(20) NOT NULL DEFAULT 'queued',
  result jsonb,
  error_message text,
  job_id uuid,
  attempt integer NOT NULL DEFAULT 0,
  lease_until timestamptz,
  changeset_id uuid REFERENCES ai_changesets(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  CONSTRAINT ai_requests_type_check CHECK (request_type IN ('create', 'modify', 'debug', 'deploy')),
  CONSTRAINT ai_requests_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed'))
);
CREATE INDEX idx_ai_requests_project ON ai_requests (project_id, created_at DESC);
CREATE INDEX idx_ai_requests_running ON ai_requests (lease_until) WHERE status = 'running';

CREATE TABLE ai_chat_messages (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  role varchar(20) NOT NULL,
  content text NOT NULL,
  tools jsonb NOT NULL DEFAULT '[]',
  changeset_id uuid REFERENCES ai_changesets(id) ON DELETE SET NULL,
  usage jsonb,
  error_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ai_chat_messages_role_check CHECK (role IN ('user', 'assistant'))
);
CREATE INDEX idx_ai_chat_messages_project ON ai_chat_messages (project_id, created_at);

ALTER TABLE claude_interactions
  ADD COLUMN provider varchar(20),
  ADD COLUMN request_id uuid,
  ADD COLUMN changeset_id uuid,
  ADD COLUMN cache_read_input_tokens integer,
  ADD COLUMN cache_creation_input_tokens integer,
  ADD COLUMN stop_reason varchar(50);
CREATE INDEX idx_claude_interactions_request ON claude_interactions (request_id)
  WHERE request_id IS NOT NULL;
