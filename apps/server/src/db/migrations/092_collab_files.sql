-- How each collaborative document (services/collab) stands against its file (issue 13).
--
--  * collab_files: one row per (project, path) that has had a ShareDB document. `file_version` is
--    the file version the document has absorbed (written by a flush, or applied as an op from
--    another writer). When `doc_version` is set, the document's text at that version is exactly
--    the file's content at `file_version` (the base for three-way merges of other writers, and
--    "nothing to flush" when the document has not moved since). Changed only under the
--    document's advisory lock, and conditionally (`WHERE file_version = <what was read>`).

CREATE TABLE collab_files (
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  path text NOT NULL,
  file_version integer NOT NULL,
  doc_version integer,
  flushed_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, path)
);
