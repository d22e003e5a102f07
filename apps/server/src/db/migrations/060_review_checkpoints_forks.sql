-- Review and undo the assistant's work (issue 16): hunk decisions, checkpoints, forks.
--
--  * ai_hunk_decisions (services/ai): the decision on one hunk of a changeset. Hunks are
--    computed from the changeset's before/after contents (their ids are stable hashes), so only
--    decisions are stored; no row means pending. Who and when are kept; the activity log has
--    every decision in order.
--  * ai_chat_messages.rewound_at: a restore rewinds the chat; later messages stay in history,
--    marked, and leave the model's context. rewound_by names the restore's checkpoint.
--  * project_checkpoints / project_checkpoint_files (services/checkpoints): a moment of a
--    project: each file's path and version (file_versions holds the content: nothing is
--    copied), the chat position (the last visible message, plus the earlier messages that were
--    rewound then), the configuration and the environment's names.
--  * projects.forked_from / forked_from_checkpoint: where a fork came from.

CREATE TABLE ai_hunk_decisions (
  changeset_id uuid NOT NULL REFERENCES ai_changesets(id) ON DELETE CASCADE,
  hunk_id varchar(64) NOT NULL,
  file_path text NOT NULL,
  state varchar(10) NOT NULL,
  decided_by uuid REFERENCES users(id) ON DELETE SET NULL,
  decided_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (changeset_id, hunk_id),
  CONSTRAINT ai_hunk_decisions_state_check CHECK (state IN ('accepted', 'rejected'))
);

ALTER TABLE ai_chat_messages
  ADD COLUMN rewound_at timestamptz,
  ADD COLUMN rewound_by uuid;
CREATE INDEX idx_ai_chat_messages_order ON ai_chat_messages (project_id, created_at, id);

CREATE TABLE project_checkpoints (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name varchar(200) NOT NULL,
  kind varchar(20) NOT NULL,
  created_by uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  chat_message_id uuid,
  chat_hidden_ids uuid[] NOT NULL DEFAULT '{}',
  config jsonb NOT NULL DEFAULT '{}',
  env_names text[] NOT NULL DEFAULT '{}',
  file_count integer NOT NULL DEFAULT 0,
  CONSTRAINT project_checkpoints_kind_check CHECK (kind IN ('manual', 'assistant', 'restore'))
);
CREATE INDEX idx_project_checkpoints_project ON project_checkpoints (project_id, created_at DESC);

CREATE TABLE project_checkpoint_files (
  checkpoint_id uuid NOT NULL REFERENCES project_checkpoints(id) ON DELETE CASCADE,
  file_path text NOT NULL,
  version integer NOT NULL,
  content_hash char(64) NOT NULL,
  PRIMARY KEY (checkpoint_id, file_path)
);

ALTER TABLE projects
  ADD COLUMN forked_from uuid REFERENCES projects(id) ON DELETE SET NULL,
  ADD COLUMN forked_from_checkpoint uuid REFERENCES project_checkpoints(id) ON DELETE SET NULL;
