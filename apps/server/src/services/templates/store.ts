import { sql, type Kysely, type Selectable } from 'kysely';
import type { Db } from '../../db/index.ts';

interface ProjectTemplatesTable {
  id: string;
  name: string;
  description: string;
  category: string;
  tags: string[];
  tech_stack: unknown;
  file_structure: unknown;
  run_config: unknown;
  is_public: boolean;
  is_featured: boolean;
  is_official: boolean;
  usage_count: number;
}

type TemplatesTables = {
  project_templates: ProjectTemplatesTable;
};

export type TemplateRow = Selectable<ProjectTemplatesTable>;
export type TemplateSummaryRow = Omit<TemplateRow, 'file_structure' | 'run_config'>;

const summaryColumns = [
  'id',
  'name',
  'description',
  'category',
  'tags',
  'tech_stack',
  'is_public',
  'is_featured',
  'is_official',
  'usage_count',
] as const;

/** SQL for project_templates. Only published templates (official or public) are visible. */
export class TemplatesStore {
  readonly #db: Kysely<TemplatesTables>;

  constructor(db: Db) {
    this.#db = db.withTables<TemplatesTables>();
  }

  /** Featured first, then official, then the most used. */
  listVisible(): Promise<TemplateSummaryRow[]> {
    return this.#db
      .selectFrom('project_templates')
      .select(summaryColumns)
      .where((eb) => eb.or([eb('is_official', '=', true), eb('is_public', '=', true)]))
      .orderBy('is_featured', 'desc')
      .orderBy('is_official', 'desc')
      .orderBy('usage_count', 'desc')
      .orderBy('name', 'asc')
      .execute();
  }

  findVisible(id: string): Promise<TemplateRow | undefined> {
    return this.#db
      .selectFrom('project_templates')
      .select([...summaryColumns, 'file_structure', 'run_config'])
      .where('id', '=', id)
      .where((eb) => eb.or([eb('is_official', '=', true), eb('is_public', '=', true)]))
      .executeTakeFirst();
  }

  /** Adds one to usage_count; false when no such template. */
  async incrementUsage(id: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('project_templates')
      .set({ usage_count: sql<number>`usage_count + 1` })
      .where('id', '=', id)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
