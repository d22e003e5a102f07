import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { traceMethods } from '../../common/telemetry.ts';

/** A piece of text the model wrote. */
export interface TextPart {
  type: 'text';
  text: string;
}

/** The model asking for a tool to run. */
export interface ToolCallPart {
  type: 'tool_call';
  id: string;
  name: string;
  input: unknown;
}

/** What a tool answered, handed back to the model. */
export interface ToolResultPart {
  type: 'tool_result';
  toolCallId: string;
  content: string;
  isError: boolean;
}

/** One message of a conversation, independent of the provider's wire format. */
export type ConversationMessage =
  | { role: 'user'; content: (TextPart | ToolResultPart)[] }
  | { role: 'assistant'; content: (TextPart | ToolCallPart)[] };

/** A tool as the model sees it: name, what it does, JSON Schema of its input. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: { type: 'object'; properties: Record<string, unknown>; required?: string[] };
}

/** Tokens one model turn used. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

/** One model turn's answer. */
export interface ModelTurn {
  content: (TextPart | ToolCallPart)[];
  stopReason: 'end' | 'tool_use' | 'max_tokens' | 'other';
  usage: TokenUsage;
}

/** What one model turn is asked. */
export interface TurnRequest {
  /** The stable prefix (with the tools): cached by providers that support it. */
  system: string;
  tools: ToolSpec[];
  messages: ConversationMessage[];
  maxTokens: number;
  signal?: AbortSignal;
  /** Called with each piece of text as it streams in. */
  onText?: (delta: string) => void;
}

/** A model behind a provider's API: one streamed turn at a time. */
export interface ModelProvider {
  readonly name: 'anthropic' | 'openai';
  readonly model: string;
  turn(request: TurnRequest): Promise<ModelTurn>;
}

/** The provider failed (network, status, malformed answer); the message says how. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/** What the providers need from the configuration. */
export interface ProviderConfig {
  anthropicApiKey: string | undefined;
  anthropicBaseUrl: string | undefined;
  openaiApiKey: string | undefined;
  openaiBaseUrl: string | undefined;
  model: string;
}

/**
 * The configured provider: Anthropic when ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL) is set,
 * else an OpenAI-compatible server when OPENAI_API_KEY or OPENAI_BASE_URL is; otherwise none.
 */
export function createProvider(config: ProviderConfig): ModelProvider | undefined {
  // Each model turn is a span (`anthropic turn`, `openai turn`) when traces are exported.
  const traced = (provider: ModelProvider) =>
    traceMethods(provider, provider.name, ['turn'], {
      'gen_ai.system': provider.name,
      'gen_ai.request.model': provider.model,
    });
  if (config.anthropicApiKey || config.anthropicBaseUrl) {
    return traced(
      new AnthropicProvider({
        apiKey: config.anthropicApiKey ?? 'not-needed',
        baseUrl: config.anthropicBaseUrl,
        model: config.model,
      }),
    );
  }
  if (config.openaiApiKey || config.openaiBaseUrl) {
    return traced(
      new OpenAiProvider({
        apiKey: config.openaiApiKey ?? 'not-needed',
        baseUrl: config.openaiBaseUrl,
        model: config.model,
      }),
    );
  }
  return undefined;
}

/** Claude through the Messages API (@anthropic-ai/sdk): streaming, tool use, prompt caching. */
export class AnthropicProvider implements ModelProvider {
  readonly name = 'anthropic' as const;
  readonly model: string;
  readonly #client: Anthropic;

  constructor(options: { apiKey: string; baseUrl?: string; model: string }) {
    this.model = options.model;
    this.#client = new Anthropic({
      apiKey: options.apiKey,
      baseURL: options.baseUrl ?? null,
      maxRetries: 2,
      timeout: 10 * 60_000,
      openTelemetry: false,
      logLevel: 'off',
    });
  }

  async turn(request: TurnRequest): Promise<ModelTurn> {
    const tools: Anthropic.Tool[] = request.tools.map((t) => ({
      name: t.name,
      description: t.description,
      input_schema: t.inputSchema,
    }));
    const messages = request.messages.map(toAnthropicMessage);
    // Cache the conversation so far too: each step of a tool loop re-sends all of it.
    markLastBlockCached(messages);
    try {
      const stream = this.#client.messages.stream(
        {
          model: this.model,
          max_tokens: request.maxTokens,
          // Tools come first in the prompt, then the system text: one breakpoint caches both.
          system: [{ type: 'text', text: request.system, cache_control: { type: 'ephemeral' } }],
          tools,
          messages,
        },
        { signal: request.signal },
      );
      if (request.onText) stream.on('text', (delta) => request.onText!(delta));
      const final = await stream.finalMessage();
      const content: (TextPart | ToolCallPart)[] = [];
      for (const block of final.content) {
        if (block.type === 'text') content.push({ type: 'text', text: block.text });
        else if (block.type === 'tool_use') {
          content.push({ type: 'tool_call', id: block.id, name: block.name, input: block.input });
        }
      }
      return {
        content,
        stopReason:
          final.stop_reason === 'end_turn' || final.stop_reason === 'stop_sequence'
            ? 'end'
            : final.stop_reason === 'tool_use'
              ? 'tool_use'
              : final.stop_reason === 'max_tokens'
                ? 'max_tokens'
                : 'other',
        usage: {
          inputTokens: final.usage.input_tokens ?? 0,
          outputTokens: final.usage.output_tokens ?? 0,
          cacheReadTokens: final.usage.cache_read_input_tokens ?? 0,
          cacheWriteTokens: final.usage.cache_creation_input_tokens ?? 0,
        },
      };
    } catch (err) {
      throw providerError(err, request.signal);
    }
  }
}

function toAnthropicMessage(m: ConversationMessage): Anthropic.MessageParam {
  if (m.role === 'assistant') {
    return {
      role: 'assistant',
      content: m.content.map((p) =>
        p.type === 'text'
          ? { type: 'text' as const, text: p.text }
          : { type: 'tool_use' as const, id: p.id, name: p.name, input: p.input },
      ),
    };
  }
  return {
    role: 'user',
    content: m.content.map((p) =>
      p.type === 'text'
        ? { type: 'text' as const, text: p.text }
        : {
            type: 'tool_result' as const,
            tool_use_id: p.toolCallId,
            content: p.content,
            is_error: p.isError,
          },
    ),
  };
}

function markLastBlockCached(messages: Anthropic.MessageParam[]): void {
  const last = messages.at(-1);
  if (!last || typeof last.content === 'string') return;
  const block = last.content.at(-1);
  if (block && (block.type === 'text' || block.type === 'tool_result')) {
    block.cache_control = { type: 'ephemeral' };
  }
}

/** Any OpenAI-compatible chat-completions server (OpenAI, local model servers) via `openai`. */
export class OpenAiProvider implements ModelProvider {
  readonly name = 'openai' as const;
  readonly model: string;
  readonly #client: OpenAI;

  constructor(options: { apiKey: string; baseUrl?: string; model: string }) {
    this.model = options.model;
    this.#client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseUrl ?? null,
      maxRetries: 2,
      timeout: 10 * 60_000,
      logLevel: 'off',
    });
  }

  async turn(request: TurnRequest): Promise<ModelTurn> {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: request.system },
      ...request.messages.flatMap(toOpenAiMessages),
    ];
    const tools: OpenAI.Chat.ChatCompletionTool[] = request.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: t.inputSchema },
    }));
    try {
      const stream = await this.#client.chat.completions.create(
        {
          model: this.model,
          max_completion_tokens: request.maxTokens,
          messages,
          tools,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: request.signal },
      );
      let text = '';
      let finish: string | null = null;
      const calls = new Map<number, { id: string; name: string; args: string }>();
      const usage: TokenUsage = {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      };
      for await (const chunk of stream) {
        if (chunk.usage) {
          // prompt_tokens includes the cached ones; keep them apart as Anthropic does.
          usage.cacheReadTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
          usage.inputTokens = (chunk.usage.prompt_tokens ?? 0) - usage.cacheReadTokens;
          usage.outputTokens = chunk.usage.completion_tokens ?? 0;
        }
        const choice = chunk.choices[0];
        if (!choice) continue;
        const delta = choice.delta;
        if (delta?.content) {
          text += delta.content;
          request.onText?.(delta.content);
        }
        for (const call of delta?.tool_calls ?? []) {
          const entry = calls.get(call.index) ?? { id: '', name: '', args: '' };
          if (call.id) entry.id = call.id;
          if (call.function?.name) entry.name += call.function.name;
          if (call.function?.arguments) entry.args += call.function.arguments;
          calls.set(call.index, entry);
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      const content: (TextPart | ToolCallPart)[] = [];
      if (text) content.push({ type: 'text', text });
      for (const [index, call] of [...calls.entries()].sort((a, b) => a[0] - b[0])) {
        content.push({
          type: 'tool_call',
          id: call.id || `call_${index}`,
          name: call.name,
          input: parseArguments(call.args),
        });
      }
      return {
        content,
        stopReason:
          finish === 'tool_calls' || calls.size > 0
            ? 'tool_use'
            : finish === 'stop'
              ? 'end'
              : finish === 'length'
                ? 'max_tokens'
                : 'other',
        usage,
      };
    } catch (err) {
      throw providerError(err, request.signal);
    }
  }
}

function toOpenAiMessages(m: ConversationMessage): OpenAI.Chat.ChatCompletionMessageParam[] {
  if (m.role === 'assistant') {
    const text = m.content
      .filter((p): p is TextPart => p.type === 'text')
      .map((p) => p.text)
      .join('');
    const calls = m.content.filter((p): p is ToolCallPart => p.type === 'tool_call');
    return [
      {
        role: 'assistant',
        content: text || null,
        ...(calls.length
          ? {
              tool_calls: calls.map((c) => ({
                id: c.id,
                type: 'function' as const,
                function: { name: c.name, arguments: JSON.stringify(c.input ?? {}) },
              })),
            }
          : {}),
      },
    ];
  }
  const out: OpenAI.Chat.ChatCompletionMessageParam[] = [];
  for (const p of m.content) {
    if (p.type === 'tool_result') {
      out.push({
        role: 'tool',
        tool_call_id: p.toolCallId,
        content: p.isError ? `Error: ${p.content}` : p.content,
      });
    } else out.push({ role: 'user', content: p.text });
  }
  return out;
}

/** Tool arguments as the model wrote them; malformed JSON reaches the tool as a string. */
function parseArguments(args: string): unknown {
  if (!args.trim()) return {};
  try {
    return JSON.parse(args);
  } catch {
    return args;
  }
}

function providerError(err: unknown, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error('aborted');
  if (err instanceof ProviderError) return err;
  const status = (err as { status?: number }).status;
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError(
    status
      ? `The AI provider answered ${status}: ${message}`
      : `The AI provider failed: ${message}`,
    status,
  );
}
