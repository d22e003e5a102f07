export { ProjectSocketHub } from './project-socket.ts';
