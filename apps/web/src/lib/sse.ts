/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Reads a `text/event-stream` body event by event. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length || event !== 'message') yield { event, data: data.join('\n') };
    }
  }
}

/**
 * The text of a finished `text/event-stream` snapshot (e.g. `GET …/logs?follow=false`): each
 * `data:` payload on its own line (a JSON string, or `{line}`/`{text}`, is unwrapped). A body
 * that is not an event stream is returned as is.
 */
export function sseSnapshotText(text: string): string {
  if (!/^(data|event|id):/m.test(text)) return text;
  return text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => {
      const payload = l.slice(5).trimStart();
      try {
        const parsed = JSON.parse(payload) as { line?: string; text?: string } | string;
        return typeof parsed === 'string' ? parsed : (parsed.line ?? parsed.text ?? payload);
      } catch {
        return payload;
      }
    })
    .join('\n');
}
