import { z } from '@hono/zod-openapi';

/** The longest message, in characters (code points). */
export const maxMessageChars = 4000;

/** A message of the session chat (also the `data.message` of the project socket's `chat` event). */
export const SessionMessageSchema = z
  .object({
    id: z.uuid(),
    userId: z
      .uuid()
      .nullable()
      .openapi({ description: 'The author; null when the account is gone' }),
    name: z.string().openapi({ description: 'The author’s name' }),
    text: z.string(),
    createdAt: z.string().openapi({ description: 'ISO-8601' }),
  })
  .openapi('SessionMessage');

/** The project socket's `chat` event: `{type: 'chat', data: {message}}`. */
export const ChatEventSchema = z
  .object({ type: z.literal('chat'), data: z.object({ message: SessionMessageSchema }) })
  .openapi('ChatEvent');
