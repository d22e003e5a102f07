// The one part of Bun's test runner that test/bun-preload.ts uses (Bun's own types are not a
// dependency: `bun test` runs the same vitest-style files).
declare module 'bun:test' {
  export function afterAll(fn: () => unknown): void;
}
