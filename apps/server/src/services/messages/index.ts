export { MessagesService, defaultChatLimits, pageLimits } from './service.ts';
export type { ChatLimits, MessagesServiceDeps, SessionMessage } from './service.ts';
export { ChatEventSchema, SessionMessageSchema, maxMessageChars } from './schemas.ts';
