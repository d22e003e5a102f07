-- Project statistics from project_files, once per statement instead of once per row.
-- 001's row-level trigger updated the project's row for every file: a 10,000-file import
-- updated the same row 10,000 times in one transaction, each update slower than the last
-- (every version of the row stays visible to the transaction's index lookups): quadratic.
-- Transition tables give the same totals with one UPDATE per statement.

DROP TRIGGER update_project_stats_trigger ON project_files;

CREATE FUNCTION update_project_stats_per_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE projects p SET total_files = p.total_files + d.n,
      total_size_bytes = p.total_size_bytes + d.bytes, last_activity_at = now()
    FROM (SELECT project_id, count(*) AS n, sum(size_bytes) AS bytes
          FROM new_rows GROUP BY project_id) d
    WHERE p.id = d.project_id;
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE projects p SET total_size_bytes = p.total_size_bytes + d.bytes, last_activity_at = now()
    FROM (SELECT project_id, sum(bytes) AS bytes FROM (
            SELECT project_id, size_bytes AS bytes FROM new_rows
            UNION ALL
            SELECT project_id, -size_bytes FROM old_rows) x
          GROUP BY project_id) d
    WHERE p.id = d.project_id;
  ELSE
    UPDATE projects p SET total_files = p.total_files - d.n,
      total_size_bytes = p.total_size_bytes - d.bytes, last_activity_at = now()
    FROM (SELECT project_id, count(*) AS n, sum(size_bytes) AS bytes
          FROM old_rows GROUP BY project_id) d
    WHERE p.id = d.project_id;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER project_stats_after_insert AFTER INSERT ON project_files
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION update_project_stats_per_statement();
CREATE TRIGGER project_stats_after_update AFTER UPDATE ON project_files
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION update_project_stats_per_statement();
CREATE TRIGGER project_stats_after_delete AFTER DELETE ON project_files
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION update_project_stats_per_statement();

-- 001 refused moving a file row to another project in the stats trigger; keep refusing.
CREATE FUNCTION refuse_project_files_project_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'project_files rows cannot move between projects';
END;
$$;
CREATE TRIGGER project_files_stay_in_project BEFORE UPDATE ON project_files
  FOR EACH ROW WHEN (NEW.project_id IS DISTINCT FROM OLD.project_id)
  EXECUTE FUNCTION refuse_project_files_project_change();
