export { TemplatesService, architectures } from './service.ts';
export type { Architecture, TechStack, Template, TemplateRun, TemplateSummary } from './service.ts';
export { createTemplatesRoutes, TechStackSchema } from './routes.ts';
