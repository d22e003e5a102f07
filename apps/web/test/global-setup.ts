import type { TestProject } from 'vitest/node';
import { startServer, type RunningServer } from '../../../tests/e2e/server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the real server the component tests talk to. */
    vfServerUrl: string;
  }
}

let server: RunningServer | undefined;

/** Starts one real Vaporform server for the run. */
export async function setup(project: TestProject): Promise<void> {
  server = await startServer();
  project.provide('vfServerUrl', `http://127.0.0.1:${server.port}`);
}

/** Stops it. */
export async function teardown(): Promise<void> {
  await server?.stop();
}
