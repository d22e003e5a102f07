export { TerminalService, TERMINAL_CLOSE } from './service.ts';
export type { TerminalServiceDeps } from './service.ts';
