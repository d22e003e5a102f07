-- Files (issue 3): search index, path ordering, move links and cheaper writes.
--
--  * Full-text search moves out of the write path. 001 indexed to_tsvector(content) on
--    project_files itself: every save paid for tokenising the whole file, and a text file with
--    more than 1 MB of distinct words (possible under the 5 MiB limit) could not be saved at all
--    ("string is too long for tsvector"). file_search holds one row per current file, refreshed
--    right after each commit by the files service (and reconciled at start-up).
--  * Code-aware words: punctuation splits words (this.state → this, state) and camelCase parts
--    are indexed too (getUser → getuser, get, user), with the 'simple' configuration (no stemming,
--    no stop words).
--  * pg_trgm (path and name matches) and btree_gin (project id inside the GIN indexes) are used
--    when the server has them; without them search still works, only slower.

DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pg_trgm is not available (%): path search runs without a trigram index', SQLERRM;
END $$;

DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS btree_gin;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'btree_gin is not available (%): search indexes leave out the project id', SQLERRM;
END $$;

-- LZ4 compresses and decompresses file contents several times faster than pglz, where the
-- server was built with it.
DO $$
BEGIN
  ALTER TABLE project_files ALTER COLUMN content SET COMPRESSION lz4;
  ALTER TABLE file_versions ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'lz4 is not available (%): file contents keep the default compression', SQLERRM;
END $$;

DROP INDEX IF EXISTS idx_project_files_content_search;

-- Byte order ("C") for listings, directory ranges (path >= 'dir/' AND path < 'dir0') and the
-- storage total (index-only, thanks to INCLUDE).
CREATE INDEX idx_project_files_path_c ON project_files (project_id, file_path COLLATE "C")
  INCLUDE (size_bytes);

-- The other side of a move: on the new path's version, where it came from; on the old path's
-- closing version, where it went.
ALTER TABLE file_versions ADD COLUMN moved_path text;

-- The words of a text file, for search. Bounded: the first 100,000 characters, and a smaller
-- prefix if even that exceeds tsvector's 1 MB limit (e.g. many distinct non-ASCII words).
CREATE FUNCTION vaporform_code_words(content text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  head text := left(content, 100000);
BEGIN
  RETURN to_tsvector('simple', regexp_replace(head, '[^[:alnum:]]+', ' ', 'g'))
    || to_tsvector('simple', regexp_replace(
         regexp_replace(head, '([[:lower:][:digit:]])([[:upper:]])', '\1 \2', 'g'),
         '[^[:alnum:]]+', ' ', 'g'));
EXCEPTION WHEN program_limit_exceeded THEN
  RETURN to_tsvector('simple', regexp_replace(left(content, 10000), '[^[:alnum:]]+', ' ', 'g'));
END;
$$;

CREATE TABLE file_search (
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  file_path text NOT NULL,
  content_hash char(64) NOT NULL,
  words tsvector NOT NULL,
  PRIMARY KEY (project_id, file_path)
);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gin') THEN
    CREATE INDEX idx_file_search_words ON file_search USING gin (project_id, words);
  ELSE
    CREATE INDEX idx_file_search_words ON file_search USING gin (words);
  END IF;
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gin') THEN
      CREATE INDEX idx_file_search_path ON file_search USING gin (project_id, file_path gin_trgm_ops);
    ELSE
      CREATE INDEX idx_file_search_path ON file_search USING gin (file_path gin_trgm_ops);
    END IF;
  END IF;
END $$;

-- Files that existed before this migration (text files only: binary contents are base64).
INSERT INTO file_search (project_id, file_path, content_hash, words)
SELECT project_id, file_path, content_hash,
  CASE WHEN is_binary THEN ''::tsvector ELSE vaporform_code_words(content) END
FROM project_files;
