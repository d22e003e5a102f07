-- Secrets service (issue 5): master-key bookkeeping and encrypted project environment variables.
-- project_integrations (001) is the secrets service's too.

-- Which master key seals new values. The key material never reaches the database: it lives in
-- VAPORFORM_MASTER_KEY or <data dir>/keys/master-keys. Ids are derived from the key material.
CREATE TABLE secret_keys (
  id varchar(32) PRIMARY KEY,
  algorithm varchar(32) NOT NULL DEFAULT 'aes-256-gcm',
  status varchar(16) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz NOT NULL DEFAULT now(),
  retiring_at timestamptz,
  retired_at timestamptz,
  CONSTRAINT secret_keys_status_check CHECK (status IN ('active', 'retiring', 'retired'))
);
-- At most one key seals new values.
CREATE UNIQUE INDEX secret_keys_one_active ON secret_keys ((true)) WHERE status = 'active';

-- One row per variable; the value is sealed (AES-256-GCM) and bound to (project_id, name).
CREATE TABLE project_env_vars (
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name varchar(128) NOT NULL,
  value_encrypted text NOT NULL,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  updated_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT project_env_vars_pkey PRIMARY KEY (project_id, name),
  CONSTRAINT project_env_vars_name_check CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]*$')
);
CREATE TRIGGER update_project_env_vars_updated_at BEFORE UPDATE ON project_env_vars
  FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
