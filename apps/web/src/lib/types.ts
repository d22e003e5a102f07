// Shapes of the HTTP contract (API.md) the IDE relies on. Kept by hand, small on purpose: the
// server's /openapi.json is the authority.

/** The signed-in user. */
export interface User {
  id: string;
  email: string;
  name: string;
  username: string;
  avatarUrl?: string;
  createdAt: string;
  lastLoginAt?: string;
  mfaEnabled?: boolean;
}

/** Project roles, highest first. */
export type Role = 'owner' | 'admin' | 'editor' | 'viewer';

/** The architecture choices of the wizard (seeds/000). */
export type Architecture = 'pwa' | 'microservices' | 'monolithic';

/** seeds/000 ProjectConfig, every part optional. */
export interface ProjectConfig {
  architecture?: Architecture;
  backend?: { language?: string; framework?: string; isBaaS?: boolean };
  frontend?: { framework?: string; cssFrameworks?: string[]; buildTool?: string };
  database?: string[];
  integrations?: { apis?: string[]; packages?: string[] };
  functionality?: string;
}

/** A project as the API returns it (with the caller's role). */
export interface Project {
  id: string;
  name: string;
  description: string;
  type: Architecture;
  status: 'creating' | 'running' | 'stopped' | 'error' | 'archived';
  statusReason?: string;
  config: ProjectConfig;
  role: Role;
  templateId?: string;
  health?: 'healthy' | 'unhealthy' | 'starting' | 'unknown';
  containerId?: string;
  serviceUrl?: string;
  previewUrl?: string;
  totalFiles: number;
  totalSizeBytes: number;
  lastActivityAt?: string;
  createdAt: string;
  updatedAt: string;
}

/** A template of the gallery. */
export interface TemplateSummary {
  id: string;
  name: string;
  description: string;
  category: string;
  tags: string[];
  techStack: ProjectConfig;
  featured?: boolean;
}

/** One project member. */
export interface Member {
  userId: string;
  email: string;
  name: string;
  username?: string;
  role: Role;
}

/** An email invited to a project before it has an account (pending until it registers). */
export interface Invitation {
  id: string;
  email: string;
  role: Exclude<Role, 'owner'>;
  invitedBy?: string;
  createdAt: string;
}

/** An activity log entry. */
export interface Activity {
  id?: string;
  type: string;
  description: string;
  userId?: string;
  sourceType: string;
  createdAt: string;
  metadata: Record<string, unknown>;
}

/** One entry of the file listing. */
export interface FileEntry {
  path: string;
  size: number;
  type?: string;
  version: number;
  contentHash?: string;
  updatedAt?: string;
}

/** A file with its content. */
export interface FileContent {
  path: string;
  content: string;
  encoding: 'utf-8' | 'base64';
  version: number;
  contentHash?: string;
  size?: number;
}

/** One stored version of a file. */
export interface FileVersion {
  version: number;
  contentHash?: string;
  size: number;
  createdAt: string;
  createdBy?: string | null;
  source?: string;
}

/** One search hit. */
export interface SearchResult {
  path: string;
  line: number;
  preview: string;
}

/** A project's container as the containers API describes it. */
export interface Container {
  id?: string;
  projectId: string;
  status: string;
  ports?: unknown;
  serviceUrl?: string | null;
  health?: string;
  createdAt?: string;
  lastActivity?: string;
  reason?: string | null;
  /** How the dev server crashed, while `status` is `crashed`. */
  crash?: CrashReport | null;
  /** Last sampled resource use (null until sampled). */
  resources?: { cpuPercent: number | null; memoryMb: number | null; sampledAt: string | null };
  [key: string]: unknown;
}

/** A dev server's crash: a one-line reason and its last log lines (oldest first). */
export interface CrashReport {
  reason: string;
  lines: string[];
  at?: string;
}

/** A chat message of the project's AI conversation. */
export interface ChatMessage {
  id?: string;
  role: 'user' | 'assistant';
  content: string;
  createdAt?: string;
  changesetId?: string | null;
  tools?: ChatTool[];
  changes?: ChatFileChange[];
}

/** A tool call the assistant made. */
export interface ChatTool {
  name: string;
  input?: unknown;
  summary?: string;
}

/** A file the assistant changed. */
export interface ChatFileChange {
  path: string;
  operation: string;
  diff?: string;
}

/** A message of the project WebSocket. */
export interface ProjectEvent {
  type: string;
  data?: Record<string, unknown>;
  [key: string]: unknown;
}
