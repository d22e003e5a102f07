-- Infrastructure (issue 14): deployments provisioned by Terraform, their runs and the runs'
-- progress events.
--
--  * A deployment is a project's set of machines on one target (`local`, `aws`, `gcp`,
--    `azure`); its Terraform state lives in the schema `tfstate_<id without dashes>` (the `pg`
--    backend), dropped when the deployment is destroyed.
--  * A run is one Terraform command sequence (`apply`, `destroy`, `refresh`), statuses after
--    Terraform Cloud's runs. At most one runs per deployment (advisory lock, held by the run).
--  * Every `-json` line of a run is stored as an event with a per-deployment offset (`seq`),
--    so a log stream can resume after any offset.

CREATE TABLE infra_deployments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  provider varchar(10) NOT NULL,
  status varchar(12) NOT NULL DEFAULT 'queued',
  variables jsonb NOT NULL DEFAULT '{}',
  machines jsonb NOT NULL DEFAULT '[]',
  outputs jsonb NOT NULL DEFAULT '{}',
  drift jsonb,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT infra_deployments_provider_check CHECK (provider IN ('local', 'aws', 'gcp', 'azure')),
  CONSTRAINT infra_deployments_status_check CHECK (status IN ('queued', 'planning', 'applying',
    'ready', 'failed', 'canceled', 'destroying', 'destroyed'))
);
CREATE INDEX idx_infra_deployments_project ON infra_deployments (project_id, created_at DESC);

CREATE TABLE infra_runs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  deployment_id uuid NOT NULL REFERENCES infra_deployments(id) ON DELETE CASCADE,
  kind varchar(10) NOT NULL,
  status varchar(12) NOT NULL DEFAULT 'queued',
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  exit_code integer,
  summary jsonb,
  error text,
  CONSTRAINT infra_runs_kind_check CHECK (kind IN ('apply', 'destroy', 'refresh')),
  CONSTRAINT infra_runs_status_check CHECK (status IN ('queued', 'planning', 'applying',
    'ready', 'failed', 'canceled', 'destroying', 'destroyed'))
);
CREATE INDEX idx_infra_runs_deployment ON infra_runs (deployment_id, started_at DESC);

CREATE TABLE infra_events (
  deployment_id uuid NOT NULL REFERENCES infra_deployments(id) ON DELETE CASCADE,
  seq integer NOT NULL,
  run_id uuid NOT NULL REFERENCES infra_runs(id) ON DELETE CASCADE,
  event jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (deployment_id, seq)
);
