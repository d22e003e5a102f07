-- Project invitations (issue 10): inviting an email that has no account yet.
--
--  * An invitation is pending until it is accepted (its email registered: it became a
--    membership) or revoked (by an admin). Settled rows stay, for the record.
--  * `email` is normalised the way auth normalises emails (trimmed, lower case), so the
--    registration of `Ann@Example.test` finds the invitation of `ann@example.test`.
--  * At most one pending invitation per project and email.

CREATE TABLE project_invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  email varchar(255) NOT NULL,
  role varchar(20) NOT NULL,
  invited_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  accepted_at timestamptz,
  accepted_by uuid REFERENCES users(id) ON DELETE SET NULL,
  revoked_at timestamptz,
  revoked_by uuid REFERENCES users(id) ON DELETE SET NULL,
  CONSTRAINT project_invitations_email_normalised CHECK (email = lower(email) AND email !~ '^\s|\s$'),
  CONSTRAINT project_invitations_role_check CHECK (role IN ('admin', 'editor', 'viewer')),
  CONSTRAINT project_invitations_settled_once CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
CREATE UNIQUE INDEX project_invitations_pending_key ON project_invitations (project_id, email)
  WHERE accepted_at IS NULL AND revoked_at IS NULL;
-- Registration looks up the pending invitations of one email.
CREATE INDEX idx_project_invitations_pending_email ON project_invitations (email)
  WHERE accepted_at IS NULL AND revoked_at IS NULL;
