-- Containers (issue 4): the installation's identity for the runtime engine.
-- Containers, networks and warm-pool slots carry `vaporform.installation=<id>`, so several
-- installations (or test databases) can share one Docker engine without touching each other's
-- containers. The row is created on first use, not here: databases copied from a template must
-- not share an id.
CREATE TABLE container_runtime_installation (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  installation_id uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Resource samples of project containers live in infrastructure_resources
-- (resource_type 'container', resource_name 'app'); the sampler upserts on its unique key.
CREATE INDEX idx_infra_resources_container ON infrastructure_resources (resource_id)
  WHERE resource_type = 'container';
