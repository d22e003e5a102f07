// Who may import whom (ARCHITECTURE.md › Dependency rule, CONVENTIONS.md §2–3).
// Run with `npm run boundaries`; every rule is an error, so CI fails on a violation.
const path = require('node:path');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Import cycles make start-up order and tests fragile. Type-only cycles are allowed inside one module (a service, a package), never between services (next rule).',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-cycle-between-services',
      severity: 'error',
      comment:
        'Services depend on each other one way: a cycle through another service is an error even when only types make it (shared types and infrastructure go below, in common/ or packages/).',
      from: { path: '^apps/server/src/services/([^/]+)/' },
      to: { circular: true, via: { pathNot: '^apps/server/src/services/$1/' } },
    },
    {
      name: 'service-through-index',
      severity: 'error',
      comment:
        "A service reaches another service only through that service's index.ts (its public surface).",
      from: { path: '^apps/server/src/services/([^/]+)/' },
      to: {
        path: '^apps/server/src/services/[^/]+/',
        pathNot: ['^apps/server/src/services/$1/', '^apps/server/src/services/[^/]+/index\\.ts$'],
      },
    },
    {
      name: 'outside-through-index',
      severity: 'error',
      comment:
        'Benchmarks, scripts and the browser tests use a service only through its index.ts, like other services do.',
      from: { path: '^(bench|scripts|tests)/' },
      to: {
        path: '^apps/server/src/services/[^/]+/',
        pathNot: '^apps/server/src/services/[^/]+/index\\.ts$',
      },
    },
    {
      name: 'index-without-routes',
      severity: 'error',
      comment:
        "A service's index.ts is its API and types (CONVENTIONS.md §2): its routes are mounted by the composition root, never exported or imported through index.ts.",
      from: { path: '^apps/server/src/services/([^/]+)/index\\.ts$' },
      to: { path: '^apps/server/src/services/$1/routes\\.ts$' },
    },
    {
      name: 'routes-only-from-composition-root',
      severity: 'error',
      comment:
        "Only the composition root (src/compose.ts) mounts a service's routes: nothing else outside the service (http/, common/, bench/, scripts/, tests/) imports its routes.ts. Other services cannot either (service-through-index); shared schemas go in the service's schemas.ts, exported by its index.ts.",
      from: { pathNot: ['^apps/server/src/compose\\.ts$', '^apps/server/src/services/'] },
      to: { path: '^apps/server/src/services/[^/]+/routes\\.ts$' },
    },
    {
      name: 'foundation-not-upward',
      severity: 'error',
      comment: 'common/ and db/ are the bottom layer: they never import services or http.',
      from: { path: '^apps/server/src/(common|db)/' },
      to: { path: '^apps/server/src/(services|http)/' },
    },
    {
      name: 'services-not-http',
      severity: 'error',
      comment: 'Dependencies flow http → services; a service never imports the HTTP layer.',
      from: { path: '^apps/server/src/services/' },
      to: { path: '^apps/server/src/http/' },
    },
    {
      name: 'web-not-server',
      severity: 'error',
      comment: 'The web app never imports server code; shared types live in packages/.',
      from: { path: '^apps/web/' },
      to: { path: '^apps/server/' },
    },
    {
      name: 'no-deep-package-imports',
      severity: 'error',
      comment:
        "Another app's or package's files are its own: import a package by name through its entry point.",
      from: { path: '^(apps|packages)/([^/]+)/' },
      to: {
        path: '^(apps|packages)/[^/]+/',
        pathNot: [
          '^$1/$2/',
          '^packages/[^/]+/(src/)?index\\.(ts|js|mjs)$',
          '^packages/[^/]+/dist/index\\.(js|mjs|d\\.ts)$',
          // The SDK's other entry point (package.json exports): the agent bundles only this.
          '^packages/sdk/src/agent-protocol\\.ts$',
        ],
      },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a typo or a missing dependency.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(apps|packages)/[^/]+/(dist|coverage|\\.vaporform)/' },
    tsPreCompilationDeps: true,
    // Absolute: depcruise hands a relative name to TypeScript, which then resolves `extends`
    // from the wrong directory.
    tsConfig: { fileName: path.join(__dirname, 'apps/server/tsconfig.json') },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.d.ts', '.js', '.mjs', '.cjs', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
