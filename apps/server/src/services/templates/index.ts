export { TemplatesService, architectures } from './service.ts';
export type { Architecture, TechStack, Template, TemplateRun, TemplateSummary } from './service.ts';
export { TechStackSchema } from './schemas.ts';
