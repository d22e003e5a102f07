-- Vaporform initial schema: the seeds' design (seeds/002), made valid and correct for PostgreSQL.
-- Differences from the seeds, on purpose:
--  * indexes are separate CREATE INDEX statements (the seeds had MySQL-style inline ones);
--  * no index duplicates a UNIQUE constraint;
--  * file history lives in file_versions, not in a self-reference on project_files;
--  * project statistics are maintained incrementally (the seeds recounted every row per change);
--  * the activity trigger records who acted and through what (user/claude/system) from
--    transaction-local settings instead of always claiming 'user';
--  * project_templates ids are text, so official templates have stable ids ('node-http').

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE FUNCTION update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$;

-- ───────────────────────────── users and sessions ─────────────────────────────
CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email varchar(255) NOT NULL,
  username varchar(50) NOT NULL,
  full_name varchar(255) NOT NULL,
  avatar_url text,
  password_hash text NOT NULL,
  bio text,
  location varchar(255),
  website_url text,
  github_username varchar(255),
  email_verified boolean NOT NULL DEFAULT false,
  is_active boolean NOT NULL DEFAULT true,
  is_premium boolean NOT NULL DEFAULT false,
  preferences jsonb NOT NULL DEFAULT '{}',
  settings jsonb NOT NULL DEFAULT '{}',
  mfa_secret text,
  mfa_enabled boolean NOT NULL DEFAULT false,
  mfa_enabled_at timestamptz,
  mfa_last_used_step bigint,
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz,
  email_verified_at timestamptz,
  CONSTRAINT users_email_lowercase CHECK (email = lower(email)),
  CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{1,49}$')
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE INDEX idx_users_github_username ON users (github_username);
CREATE INDEX idx_users_created_at ON users (created_at);
CREATE INDEX idx_users_is_active ON users (is_active);
CREATE TRIGGER update_users_updated_at BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- A session is one sign-in; its refresh tokens form one rotation chain (a "family").
CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  user_agent text,
  ip text,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason varchar(50)
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  token_hash bytea NOT NULL,
  parent_id uuid REFERENCES refresh_tokens(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz,
  CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX idx_refresh_tokens_session_id ON refresh_tokens (session_id);

-- ───────────────────────────── templates ─────────────────────────────
CREATE TABLE project_templates (
  id text PRIMARY KEY DEFAULT gen_random_uuid()::text,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  name varchar(255) NOT NULL,
  description text NOT NULL,
  category varchar(100) NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  tech_stack jsonb NOT NULL,
  default_integrations jsonb NOT NULL DEFAULT '{}',
  file_structure jsonb NOT NULL,
  run_config jsonb NOT NULL DEFAULT '{}',
  is_public boolean NOT NULL DEFAULT false,
  is_featured boolean NOT NULL DEFAULT false,
  is_official boolean NOT NULL DEFAULT false,
  usage_count integer NOT NULL DEFAULT 0,
  rating_average numeric(3,2) NOT NULL DEFAULT 0,
  rating_count integer NOT NULL DEFAULT 0,
  version varchar(20) NOT NULL DEFAULT '1.0.0',
  changelog text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz,
  CHECK (rating_average >= 0 AND rating_average <= 5),
  CHECK (usage_count >= 0)
);
CREATE INDEX idx_project_templates_category ON project_templates (category);
CREATE INDEX idx_project_templates_public ON project_templates (is_public);
CREATE INDEX idx_project_templates_featured ON project_templates (is_featured);
CREATE INDEX idx_project_templates_usage ON project_templates (usage_count DESC);
CREATE INDEX idx_project_templates_rating ON project_templates (rating_average DESC);
CREATE INDEX idx_project_templates_tags ON project_templates USING gin (tags);
CREATE TRIGGER update_project_templates_updated_at BEFORE UPDATE ON project_templates
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ───────────────────────────── projects ─────────────────────────────
CREATE TABLE projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name varchar(255) NOT NULL,
  description text NOT NULL DEFAULT '',
  functionality text,
  template_id text REFERENCES project_templates(id) ON DELETE SET NULL,
  architecture_type varchar(50) NOT NULL DEFAULT 'monolithic',
  tech_stack jsonb NOT NULL DEFAULT '{}',
  config jsonb NOT NULL DEFAULT '{}',
  integrations jsonb NOT NULL DEFAULT '{}',
  status varchar(50) NOT NULL DEFAULT 'creating',
  status_reason text,
  health_status varchar(50) NOT NULL DEFAULT 'unknown',
  container_id varchar(255),
  service_url text,
  internal_ip inet,
  allocated_port integer,
  memory_limit_mb integer NOT NULL DEFAULT 1024,
  cpu_limit_percent integer NOT NULL DEFAULT 100,
  storage_limit_mb integer NOT NULL DEFAULT 5120,
  repository_type varchar(50) NOT NULL DEFAULT 'new',
  repository_url text,
  repository_branch varchar(255) NOT NULL DEFAULT 'main',
  last_sync_at timestamptz,
  total_files integer NOT NULL DEFAULT 0,
  total_size_bytes bigint NOT NULL DEFAULT 0,
  last_activity_at timestamptz NOT NULL DEFAULT now(),
  deployment_count integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deployed_at timestamptz,
  archived_at timestamptz,
  CONSTRAINT projects_architecture_type_check CHECK (architecture_type IN ('pwa', 'microservices', 'monolithic')),
  CONSTRAINT projects_status_check CHECK (status IN ('creating', 'running', 'stopped', 'error', 'archived')),
  CONSTRAINT projects_health_status_check CHECK (health_status IN ('healthy', 'unhealthy', 'starting', 'unknown')),
  CONSTRAINT projects_repository_type_check CHECK (repository_type IN ('new', 'existing')),
  CHECK (memory_limit_mb > 0),
  CHECK (cpu_limit_percent > 0 AND cpu_limit_percent <= 100),
  CHECK (storage_limit_mb > 0),
  CHECK (total_files >= 0 AND total_size_bytes >= 0),
  CHECK (allocated_port IS NULL OR (allocated_port >= 1000 AND allocated_port <= 65535))
);
-- Name unique per owner, ignoring case ("Blog" and "blog" would confuse everyone).
CREATE UNIQUE INDEX projects_owner_name_key ON projects (user_id, lower(name));
CREATE INDEX idx_projects_status ON projects (status);
CREATE INDEX idx_projects_created_at ON projects (created_at);
CREATE INDEX idx_projects_last_activity ON projects (last_activity_at);
CREATE INDEX idx_projects_architecture ON projects (architecture_type);
CREATE INDEX idx_projects_container_id ON projects (container_id) WHERE container_id IS NOT NULL;
CREATE TRIGGER update_projects_updated_at BEFORE UPDATE ON projects
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE project_members (
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role varchar(20) NOT NULL,
  added_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, user_id),
  CONSTRAINT project_members_role_check CHECK (role IN ('owner', 'admin', 'editor', 'viewer'))
);
CREATE INDEX idx_project_members_user_id ON project_members (user_id);
CREATE UNIQUE INDEX project_members_one_owner ON project_members (project_id) WHERE role = 'owner';

-- ───────────────────────────── files ─────────────────────────────
CREATE TABLE project_files (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  file_path text NOT NULL,
  file_name varchar(255) NOT NULL,
  file_type varchar(50),
  mime_type varchar(100),
  content text NOT NULL,
  content_hash char(64) NOT NULL,
  encoding varchar(20) NOT NULL DEFAULT 'utf-8',
  size_bytes bigint NOT NULL DEFAULT 0,
  line_count integer NOT NULL DEFAULT 0,
  is_binary boolean NOT NULL DEFAULT false,
  is_generated boolean NOT NULL DEFAULT false,
  version integer NOT NULL DEFAULT 1,
  last_source varchar(20) NOT NULL DEFAULT 'user',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  updated_by uuid REFERENCES users(id) ON DELETE SET NULL,
  CONSTRAINT project_files_path_key UNIQUE (project_id, file_path),
  CONSTRAINT project_files_encoding_check CHECK (encoding IN ('utf-8', 'base64')),
  CONSTRAINT project_files_source_check CHECK (last_source IN ('user', 'claude', 'collab', 'container', 'import', 'template')),
  CHECK (size_bytes >= 0),
  CHECK (line_count >= 0),
  CHECK (version > 0)
);
CREATE INDEX idx_project_files_type ON project_files (project_id, file_type);
CREATE INDEX idx_project_files_updated_at ON project_files (updated_at);
CREATE INDEX idx_project_files_content_hash ON project_files (content_hash);
CREATE INDEX idx_project_files_is_generated ON project_files (is_generated);
-- 'simple' keeps identifiers as written; 'english' would stem and drop code words.
CREATE INDEX idx_project_files_content_search ON project_files
  USING gin (to_tsvector('simple', content)) WHERE NOT is_binary;
CREATE TRIGGER update_project_files_updated_at BEFORE UPDATE ON project_files
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Every version of every file, including those of files since deleted.
CREATE TABLE file_versions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  file_path text NOT NULL,
  version integer NOT NULL,
  content text NOT NULL,
  content_hash char(64) NOT NULL,
  encoding varchar(20) NOT NULL DEFAULT 'utf-8',
  size_bytes bigint NOT NULL,
  line_count integer NOT NULL,
  source varchar(20) NOT NULL,
  operation varchar(20) NOT NULL DEFAULT 'write',
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT file_versions_key UNIQUE (project_id, file_path, version),
  CONSTRAINT file_versions_source_check CHECK (source IN ('user', 'claude', 'collab', 'container', 'import', 'template')),
  CONSTRAINT file_versions_operation_check CHECK (operation IN ('write', 'delete', 'move', 'restore')),
  CHECK (version > 0)
);
CREATE INDEX idx_file_versions_created_at ON file_versions (project_id, created_at);

-- ───────────────────────────── AI ─────────────────────────────
CREATE TABLE claude_interactions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  interaction_type varchar(50) NOT NULL,
  user_message text NOT NULL,
  claude_response text NOT NULL DEFAULT '',
  context_data jsonb NOT NULL DEFAULT '{}',
  affected_files text[] NOT NULL DEFAULT '{}',
  commands_executed text[] NOT NULL DEFAULT '{}',
  success boolean NOT NULL DEFAULT true,
  error_message text,
  execution_time_ms integer,
  model varchar(100),
  input_tokens integer,
  output_tokens integer,
  total_tokens integer,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  CONSTRAINT claude_interactions_type_check CHECK (interaction_type IN ('chat', 'file_modification', 'project_creation', 'debug', 'deploy'))
);
CREATE INDEX idx_claude_interactions_project_id ON claude_interactions (project_id, created_at);
CREATE INDEX idx_claude_interactions_user_id ON claude_interactions (user_id);
CREATE INDEX idx_claude_interactions_type ON claude_interactions (interaction_type);
CREATE INDEX idx_claude_interactions_created_at ON claude_interactions (created_at);
CREATE INDEX idx_claude_interactions_success ON claude_interactions (success);

-- ───────────────────────────── activity ─────────────────────────────
CREATE TABLE project_activity (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  activity_type varchar(50) NOT NULL,
  description text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  affected_resources text[] NOT NULL DEFAULT '{}',
  before_state jsonb,
  after_state jsonb,
  source_type varchar(50) NOT NULL,
  source_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT project_activity_source_type_check CHECK (source_type IN ('user', 'claude', 'system', 'webhook'))
);
CREATE INDEX idx_project_activity_project_id ON project_activity (project_id, created_at DESC);
CREATE INDEX idx_project_activity_user_id ON project_activity (user_id);
CREATE INDEX idx_project_activity_type ON project_activity (activity_type);
CREATE INDEX idx_project_activity_created_at ON project_activity (created_at);
CREATE INDEX idx_project_activity_source ON project_activity (source_type, source_id);

-- ───────────────────────────── infrastructure ─────────────────────────────
CREATE TABLE infrastructure_resources (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  resource_type varchar(50) NOT NULL,
  resource_name varchar(255) NOT NULL,
  resource_id varchar(255) NOT NULL,
  configuration jsonb NOT NULL DEFAULT '{}',
  status varchar(50) NOT NULL DEFAULT 'active',
  health_check_url text,
  last_health_check timestamptz,
  health_status varchar(50) NOT NULL DEFAULT 'unknown',
  cpu_usage_percent numeric(6,2),
  memory_usage_mb integer,
  disk_usage_mb integer,
  network_in_bytes bigint NOT NULL DEFAULT 0,
  network_out_bytes bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_metrics_at timestamptz,
  CONSTRAINT infrastructure_resources_key UNIQUE (project_id, resource_type, resource_name),
  CONSTRAINT infrastructure_resources_status_check CHECK (status IN ('active', 'stopped', 'error', 'destroyed'))
);
CREATE INDEX idx_infra_resources_type ON infrastructure_resources (resource_type);
CREATE INDEX idx_infra_resources_status ON infrastructure_resources (status);
CREATE INDEX idx_infra_resources_health ON infrastructure_resources (health_status);
CREATE TRIGGER update_infrastructure_resources_updated_at BEFORE UPDATE ON infrastructure_resources
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE project_integrations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  service_name varchar(100) NOT NULL,
  service_type varchar(50) NOT NULL,
  configuration jsonb NOT NULL DEFAULT '{}',
  api_key_encrypted text,
  api_key_last4 varchar(4),
  webhook_url text,
  webhook_secret_encrypted text,
  is_active boolean NOT NULL DEFAULT true,
  is_configured boolean NOT NULL DEFAULT false,
  last_test_result jsonb,
  last_tested_at timestamptz,
  request_count integer NOT NULL DEFAULT 0,
  last_request_at timestamptz,
  error_count integer NOT NULL DEFAULT 0,
  last_error_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT project_integrations_key UNIQUE (project_id, service_name)
);
CREATE INDEX idx_project_integrations_service ON project_integrations (service_name);
CREATE INDEX idx_project_integrations_active ON project_integrations (is_active);
CREATE TRIGGER update_project_integrations_updated_at BEFORE UPDATE ON project_integrations
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Terraform-provisioned machine sets (seeds/004 "deployments").
CREATE TABLE deployments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  provider varchar(20) NOT NULL,
  region varchar(100),
  status varchar(20) NOT NULL DEFAULT 'pending',
  status_reason text,
  variables jsonb NOT NULL DEFAULT '{}',
  machines jsonb NOT NULL DEFAULT '[]',
  outputs jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  destroyed_at timestamptz,
  CONSTRAINT deployments_provider_check CHECK (provider IN ('local', 'aws', 'gcp', 'azure')),
  CONSTRAINT deployments_status_check CHECK (status IN ('pending', 'provisioning', 'ready', 'failed', 'destroying', 'destroyed'))
);
CREATE INDEX idx_deployments_project_id ON deployments (project_id, created_at DESC);
CREATE INDEX idx_deployments_status ON deployments (status);
CREATE TRIGGER update_deployments_updated_at BEFORE UPDATE ON deployments
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- ───────────────────────────── triggers: statistics and activity ─────────────────────────────

-- Keeps projects.total_files / total_size_bytes / last_activity_at true, incrementally.
CREATE FUNCTION update_project_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE projects SET total_files = total_files + 1,
      total_size_bytes = total_size_bytes + NEW.size_bytes, last_activity_at = now()
    WHERE id = NEW.project_id;
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    IF NEW.project_id <> OLD.project_id THEN
      RAISE EXCEPTION 'project_files rows cannot move between projects';
    END IF;
    UPDATE projects SET total_size_bytes = total_size_bytes - OLD.size_bytes + NEW.size_bytes,
      last_activity_at = now()
    WHERE id = NEW.project_id;
    RETURN NEW;
  ELSE
    UPDATE projects SET total_files = total_files - 1,
      total_size_bytes = total_size_bytes - OLD.size_bytes, last_activity_at = now()
    WHERE id = OLD.project_id;
    RETURN OLD;
  END IF;
END;
$$;
CREATE TRIGGER update_project_stats_trigger
  AFTER INSERT OR UPDATE OR DELETE ON project_files
  FOR EACH ROW EXECUTE FUNCTION update_project_stats();

-- Who is acting, set per transaction by the application:
--   SELECT set_config('vaporform.actor_id', '<uuid>', true), set_config('vaporform.source', 'claude', true)
CREATE FUNCTION vaporform_actor_id() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('vaporform.actor_id', true), '')::uuid
$$;
CREATE FUNCTION vaporform_source_type(file_source text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE coalesce(nullif(current_setting('vaporform.source', true), ''), file_source, 'user')
    WHEN 'claude' THEN 'claude'
    WHEN 'user' THEN 'user'
    WHEN 'collab' THEN 'user'
    WHEN 'webhook' THEN 'webhook'
    ELSE 'system'
  END
$$;

CREATE FUNCTION log_project_activity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_type text;
  v_desc text;
  v_project uuid;
  v_user uuid;
  v_source text;
  v_path text;
BEGIN
  IF TG_TABLE_NAME = 'project_files' THEN
    v_project := coalesce(NEW.project_id, OLD.project_id);
    v_path := coalesce(NEW.file_path, OLD.file_path);
    -- A project being deleted takes its files with it; nothing to log then.
    IF NOT EXISTS (SELECT 1 FROM projects WHERE id = v_project) THEN
      RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
      v_type := 'file_created'; v_desc := 'Created file: ' || NEW.file_path;
      v_user := coalesce(vaporform_actor_id(), NEW.updated_by);
      v_source := vaporform_source_type(NEW.last_source);
    ELSIF TG_OP = 'UPDATE' THEN
      IF NEW.file_path <> OLD.file_path THEN
        v_type := 'file_moved'; v_desc := 'Moved file: ' || OLD.file_path || ' → ' || NEW.file_path;
      ELSE
        v_type := 'file_modified'; v_desc := 'Modified file: ' || NEW.file_path;
      END IF;
      v_user := coalesce(vaporform_actor_id(), NEW.updated_by);
      v_source := vaporform_source_type(NEW.last_source);
    ELSE
      v_type := 'file_deleted'; v_desc := 'Deleted file: ' || OLD.file_path;
      v_user := vaporform_actor_id();
      v_source := vaporform_source_type(NULL);
    END IF;
    INSERT INTO project_activity (project_id, user_id, activity_type, description, source_type,
      metadata, affected_resources)
    VALUES (v_project, v_user, v_type, v_desc, v_source,
      jsonb_build_object('table', TG_TABLE_NAME, 'operation', TG_OP, 'file_path', v_path),
      ARRAY[v_path]);
  ELSIF TG_TABLE_NAME = 'projects' THEN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO project_activity (project_id, user_id, activity_type, description, source_type, metadata, after_state)
      VALUES (NEW.id, coalesce(vaporform_actor_id(), NEW.user_id), 'project_created',
        'Created project: ' || NEW.name, vaporform_source_type('user'),
        jsonb_build_object('templateId', NEW.template_id), jsonb_build_object('status', NEW.status));
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
      INSERT INTO project_activity (project_id, user_id, activity_type, description, source_type, metadata, before_state, after_state)
      VALUES (NEW.id, vaporform_actor_id(), 'status_changed',
        'Status changed: ' || OLD.status || ' → ' || NEW.status, vaporform_source_type('system'),
        jsonb_build_object('reason', NEW.status_reason),
        jsonb_build_object('status', OLD.status), jsonb_build_object('status', NEW.status));
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
      INSERT INTO project_activity (project_id, user_id, activity_type, description, source_type, before_state, after_state)
      VALUES (NEW.id, vaporform_actor_id(), 'project_renamed',
        'Renamed project: ' || OLD.name || ' → ' || NEW.name, vaporform_source_type('user'),
        jsonb_build_object('name', OLD.name), jsonb_build_object('name', NEW.name));
    END IF;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER log_file_activity
  AFTER INSERT OR UPDATE OR DELETE ON project_files
  FOR EACH ROW EXECUTE FUNCTION log_project_activity();
CREATE TRIGGER log_project_lifecycle_activity
  AFTER INSERT OR UPDATE ON projects
  FOR EACH ROW EXECUTE FUNCTION log_project_activity();
