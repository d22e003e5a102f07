-- Real-time collaboration (issue 13): the ShareDB database of services/collab (db-postgres.ts).
--
--  * collab_snapshots: the latest state of one OT document. collection = the project's id (its
--    canonical uuid text), doc_id = the file's path. A deleted document keeps its row with
--    doc_type and data NULL: ShareDB versions keep counting across a delete and a re-create,
--    and the op log may already be compacted, so the version must live here.
--  * collab_ops: the op log. version = the op's base version (op.v: the op turns version v into
--    v + 1). The primary key is what makes a commit happen exactly once: two instances racing for
--    the same version cannot both insert it, and the loser is told to transform and retry.
--    Compaction (PostgresDB.compact) deletes ops below a checkpoint; the snapshot stays whole.
--
-- The collection is text, not a uuid with a foreign key: ShareDB's adapter conformance suite
-- (and any future non-project collection) uses other names. Instead a trigger on projects
-- deletes a project's documents and ops with it, so deleting a project leaves nothing behind.

CREATE TABLE collab_snapshots (
  collection text NOT NULL,
  doc_id text NOT NULL,
  doc_type text,
  version integer NOT NULL,
  data jsonb,
  metadata jsonb,
  PRIMARY KEY (collection, doc_id),
  CONSTRAINT collab_snapshots_version_check CHECK (version > 0)
) WITH (fillfactor = 80); -- room for HOT updates: the row is rewritten on every op

CREATE TABLE collab_ops (
  collection text NOT NULL,
  doc_id text NOT NULL,
  version integer NOT NULL,
  operation jsonb NOT NULL,
  PRIMARY KEY (collection, doc_id, version),
  CONSTRAINT collab_ops_version_check CHECK (version >= 0)
);

CREATE FUNCTION collab_delete_project_documents() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM collab_ops WHERE collection = OLD.id::text;
  DELETE FROM collab_snapshots WHERE collection = OLD.id::text;
  RETURN OLD;
END;
$$;

CREATE TRIGGER collab_delete_project_documents AFTER DELETE ON projects
  FOR EACH ROW EXECUTE FUNCTION collab_delete_project_documents();
