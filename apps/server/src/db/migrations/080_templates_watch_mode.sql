-- Templates run in watch mode: saving a file restarts the dev server (issue 10).
-- node-http ran `node server.js`. --watch-path watches the folder: node 20's plain --watch
-- follows each file by inode on Linux and misses the second save of a file the server replaces
-- by rename. (The Docker driver runs it under the image's own watcher, vaporform-watch.)
UPDATE project_templates
SET run_config = jsonb_set(run_config, '{dev}', '"node --watch-path=. server.js"')
WHERE id = 'node-http' AND run_config->>'dev' = 'node server.js';

-- express-react runs its own `npm run dev`: new projects get a dev script that restarts on a
-- change to server.js (Vite already updates the front end in place).
UPDATE project_templates
SET file_structure = jsonb_set(file_structure, '{files}', (
  SELECT jsonb_agg(
    CASE WHEN f->>'path' = 'package.json'
      THEN jsonb_set(f, '{content}', to_jsonb(replace(f->>'content',
        '"dev": "node server.js"', '"dev": "node --watch server.js"')))
      ELSE f END
    ORDER BY i)
  FROM jsonb_array_elements(file_structure->'files') WITH ORDINALITY AS t(f, i)))
WHERE id = 'express-react';
