import { errors } from '../../common/errors.ts';
import type { Db } from '../../db/index.ts';
import { TemplatesStore, type TemplateRow, type TemplateSummaryRow } from './store.ts';

/** How a project is split up (seeds/000 `Project.type`). */
export type Architecture = 'pwa' | 'microservices' | 'monolithic';

export const architectures: readonly Architecture[] = ['pwa', 'microservices', 'monolithic'];

/**
 * The technology choices of a template or project (seeds/000 `ProjectConfig`). Every part is
 * optional: a wizard may fill in only what the person chose.
 */
export interface TechStack {
  architecture?: Architecture;
  backend?: { language?: string; framework?: string; isBaaS?: boolean };
  frontend?: { framework?: string; cssFrameworks?: string[]; buildTool?: string };
  database?: string[];
  integrations?: { apis?: string[]; packages?: string[] };
}

/** A template as the gallery lists it. */
export interface TemplateSummary {
  id: string;
  name: string;
  description: string;
  category: string;
  tags: string[];
  techStack: TechStack;
  featured: boolean;
  official: boolean;
  usageCount: number;
}

/** How a project made from the template installs and runs. */
export interface TemplateRun {
  /** Shell command run once before `dev`; null when nothing needs installing. */
  install: string | null;
  /** Shell command that starts the dev server. */
  dev: string | null;
  /** Port the dev server listens on inside the container. */
  port: number | null;
  /** Runtime family of the container image: node, python, go… */
  image: string | null;
}

/** A template with everything needed to start a project from it. */
export interface Template extends TemplateSummary {
  files: { path: string; content: string }[];
  run: TemplateRun;
}

/** The template gallery (official templates come from migration 002). */
export class TemplatesService {
  readonly #store: TemplatesStore;

  constructor(db: Db) {
    this.#store = new TemplatesStore(db);
  }

  /** Published templates, featured first. */
  async list(): Promise<TemplateSummary[]> {
    return (await this.#store.listVisible()).map(toSummary);
  }

  /**
   * One template with its files and run configuration.
   * @throws AppError not_found when there is no such published template.
   */
  async get(id: string): Promise<Template> {
    const template = await this.find(id);
    if (!template) throw errors.notFound('template');
    return template;
  }

  /** Like {@link get}, but undefined instead of throwing. */
  async find(id: string): Promise<Template | undefined> {
    const row = await this.#store.findVisible(id);
    return row ? toTemplate(row) : undefined;
  }

  /**
   * Counts one more project made from the template.
   * @throws AppError not_found when there is no such template.
   */
  async recordUse(id: string): Promise<void> {
    if (!(await this.#store.incrementUsage(id))) throw errors.notFound('template');
  }
}

function toSummary(row: TemplateSummaryRow): TemplateSummary {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    category: row.category,
    tags: row.tags,
    techStack: isRecord(row.tech_stack) ? (row.tech_stack as TechStack) : {},
    featured: row.is_featured,
    official: row.is_official,
    usageCount: row.usage_count,
  };
}

function toTemplate(row: TemplateRow): Template {
  const structure = isRecord(row.file_structure) ? row.file_structure : {};
  const files = Array.isArray(structure.files) ? structure.files : [];
  const run = isRecord(row.run_config) ? row.run_config : {};
  return {
    ...toSummary(row),
    files: files
      .filter(isRecord)
      .filter((f) => typeof f.path === 'string' && typeof f.content === 'string')
      .map((f) => ({ path: f.path as string, content: f.content as string })),
    run: {
      install: typeof run.install === 'string' ? run.install : null,
      dev: typeof run.dev === 'string' ? run.dev : null,
      port: typeof run.port === 'number' ? run.port : null,
      image: typeof run.image === 'string' ? run.image : null,
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
