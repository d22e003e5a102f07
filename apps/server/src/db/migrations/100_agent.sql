-- The machine agent (issue 15): enrollment, machine credentials, commands and deploys.
--
--  * An enrollment token is issued per machine at every provisioning run, one-use and
--    short-lived; only its sha256 is stored. The agent trades it on its first connect for a
--    machine credential, also stored only as a sha256 (a new enrollment replaces it).
--  * Commands and deploys keep their per-machine results (history; the activity log says who
--    ran what where).

CREATE TABLE agent_enrollment_tokens (
  token_hash char(64) PRIMARY KEY,
  deployment_id uuid NOT NULL REFERENCES infra_deployments(id) ON DELETE CASCADE,
  machine varchar(200) NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_agent_enrollment_tokens_machine ON agent_enrollment_tokens (deployment_id, machine);

CREATE TABLE agent_machines (
  deployment_id uuid NOT NULL REFERENCES infra_deployments(id) ON DELETE CASCADE,
  machine varchar(200) NOT NULL,
  credential_hash char(64) NOT NULL UNIQUE,
  enrolled_at timestamptz NOT NULL DEFAULT now(),
  connected_at timestamptz,
  last_seen_at timestamptz,
  PRIMARY KEY (deployment_id, machine)
);

CREATE TABLE agent_commands (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  deployment_id uuid NOT NULL REFERENCES infra_deployments(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  command text NOT NULL,
  args jsonb,
  machines jsonb NOT NULL DEFAULT '[]',
  results jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX idx_agent_commands_deployment ON agent_commands (deployment_id, created_at DESC);

CREATE TABLE agent_deploys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  deployment_id uuid NOT NULL REFERENCES infra_deployments(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  release varchar(100) NOT NULL,
  sha256 char(64),
  status varchar(12) NOT NULL DEFAULT 'running',
  results jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CONSTRAINT agent_deploys_status_check CHECK (status IN ('running', 'succeeded', 'failed', 'partial'))
);
CREATE INDEX idx_agent_deploys_deployment ON agent_deploys (deployment_id, created_at DESC);
