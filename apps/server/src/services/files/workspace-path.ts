import path from 'node:path';

/**
 * The directory a project's files are materialised into (and its container mounts at /app):
 * `<dataDir>/workspaces/<projectId>`.
 */
export function workspaceDir(dataDir: string, projectId: string): string {
  return path.join(dataDir, 'workspaces', projectId);
}
