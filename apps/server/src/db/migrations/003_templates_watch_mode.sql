-- Templates run in watch mode: saving server.js restarts the dev server (issue 10).
-- node-http ran `node server.js`; its package.json already had the watch script.
UPDATE project_templates
SET run_config = jsonb_set(run_config, '{dev}', '"node --watch server.js"')
WHERE id = 'node-http' AND run_config->>'dev' = 'node server.js';

-- express-react runs its own `npm run dev`: new projects get a dev script that watches server.js
-- (Vite already updates the front end in place).
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
