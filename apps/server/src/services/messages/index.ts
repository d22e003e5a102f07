export { MessagesService, defaultChatLimits, pageLimits } from './service.ts';
export type { ChatLimits, MessagesServiceDeps, SessionMessage } from './service.ts';
export {
  ChatEventSchema,
  SessionMessageSchema,
  createMessagesRoutes,
  maxMessageChars,
} from './routes.ts';
