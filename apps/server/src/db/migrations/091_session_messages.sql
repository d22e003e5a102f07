-- Session chat between the people of a project (issue 13; services/messages).
--
--  * project_messages: one row per message. `seq` orders them (insertion order, also the
--    paging cursor behind a message id); `id` is what the API shows. `author_name` is the
--    author's name when they wrote it, kept when the account is gone (user_id becomes NULL).
--    Text is 1..4000 characters; the routes refuse NUL and unpaired surrogates first.

CREATE TABLE project_messages (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  author_name varchar(255) NOT NULL DEFAULT '',
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT project_messages_body_length CHECK (char_length(body) BETWEEN 1 AND 4000)
);

CREATE INDEX idx_project_messages_project_seq ON project_messages (project_id, seq);
