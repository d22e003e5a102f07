import type {
  ConversationMessage,
  ModelProvider,
  TextPart,
  ToolCallPart,
  ToolResultPart,
  ToolSpec,
} from './providers.ts';
import type { ToolOutcome } from './tools.ts';

/** Limits of one run (VAPORFORM_AI_*). */
export interface AgentLimits {
  /** Input + output tokens over all turns. */
  tokenBudget: number;
  maxSteps: number;
  /** The same failing call (name and input) this many times stops the run. */
  loopLimit: number;
  maxOutputTokens: number;
}

/** Why a run stopped before the model said it was done. */
export interface AgentStop {
  reason: 'budget' | 'loop' | 'steps' | 'max_tokens' | 'cancelled';
  message: string;
}

/** A tool call as people see it (the `tool` event, the chat history). */
export interface ToolEvent {
  id: string;
  name: string;
  input: unknown;
  isError: boolean;
  summary: string;
  /** Where in the run's `text` it ran: the characters written to the person before it. */
  at: number;
}

/** What a run produced. */
export interface AgentOutcome {
  /** Everything the model wrote to the person, in order. */
  text: string;
  steps: number;
  usage: {
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens: number;
    cacheWriteTokens: number;
  };
  tools: ToolEvent[];
  /** Set when a limit stopped the run. */
  stopped?: AgentStop;
  /** The whole conversation of this run (prompt included). */
  transcript: ConversationMessage[];
}

/** The model-and-tools loop of one request. */
export interface AgentRun {
  provider: ModelProvider;
  system: string;
  tools: ToolSpec[];
  /** Earlier conversation (chat history), before the prompt. */
  history: ConversationMessage[];
  prompt: string;
  limits: AgentLimits;
  runTool: (call: ToolCallPart) => Promise<ToolOutcome>;
  onText?: (delta: string) => void;
  onTool?: (event: ToolEvent) => void;
  signal?: AbortSignal;
  /**
   * A person's Stop: the run ends where it is (the model's turn or a tool aborted) with
   * `stopped.reason` 'cancelled'; what it did so far is kept. Part of `signal` as well.
   */
  cancel?: AbortSignal;
}

/** What a cancelled run tells the person. */
export const cancelledMessage =
  'Stopped on request. The changes made so far are kept and can be reverted.';

/**
 * Runs the model with the tools until it answers without a tool call, or a limit stops it: the
 * token budget, the step limit, or the loop breaker (the same failing call repeated).
 * Provider failures throw.
 */
export async function runAgent(run: AgentRun): Promise<AgentOutcome> {
  const tools: ToolEvent[] = [];
  let partial: AgentOutcome = { text: '', steps: 0, usage: emptyUsage(), tools, transcript: [] };
  try {
    return await agentLoop(run, tools, (o) => (partial = o));
  } catch (err) {
    if (!run.cancel?.aborted) throw err;
    return { ...partial, stopped: { reason: 'cancelled', message: cancelledMessage } };
  }
}

function emptyUsage(): AgentOutcome['usage'] {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
}

async function agentLoop(
  run: AgentRun,
  tools: ToolEvent[],
  progress: (sofar: AgentOutcome) => void,
): Promise<AgentOutcome> {
  const transcript: ConversationMessage[] = [
    ...run.history,
    { role: 'user', content: [{ type: 'text', text: run.prompt }] },
  ];
  const usage = emptyUsage();
  const failures = new Map<string, number>();
  let text = '';
  let steps = 0;
  const spent = () => usage.inputTokens + usage.outputTokens;
  const done = (stopped?: AgentStop): AgentOutcome => ({
    text,
    steps,
    usage,
    tools,
    transcript: transcript.slice(run.history.length),
    ...(stopped ? { stopped } : {}),
  });
  // What a cancel returns: the text, tools and usage up to where it stopped.
  const report = () => progress(done());

  while (true) {
    if (steps >= run.limits.maxSteps) {
      return done({
        reason: 'steps',
        message: `Stopped after ${steps} steps (the limit per request); ask again to continue.`,
      });
    }
    run.signal?.throwIfAborted();
    steps++;
    report();
    // Text of this turn, separated from the previous turn's by a blank line.
    let turnText = '';
    const turn = await run.provider.turn({
      system: run.system,
      tools: run.tools,
      messages: transcript,
      maxTokens: run.limits.maxOutputTokens,
      signal: run.signal,
      onText: (delta) => {
        if (!turnText && text) {
          text += '\n\n';
          run.onText?.('\n\n');
        }
        turnText += delta;
        text += delta;
        report();
        run.onText?.(delta);
      },
    });
    usage.inputTokens +=
      turn.usage.inputTokens + turn.usage.cacheReadTokens + turn.usage.cacheWriteTokens;
    usage.outputTokens += turn.usage.outputTokens;
    usage.cacheReadTokens += turn.usage.cacheReadTokens;
    usage.cacheWriteTokens += turn.usage.cacheWriteTokens;
    // Text the provider did not stream (non-streaming servers) still reaches the person.
    const written = turn.content
      .filter((p): p is TextPart => p.type === 'text')
      .map((p) => p.text)
      .join('');
    if (written && !turnText) {
      if (text) text += '\n\n';
      text += written;
      run.onText?.(written);
    }
    transcript.push({ role: 'assistant', content: turn.content });

    const calls = turn.content.filter((p): p is ToolCallPart => p.type === 'tool_call');
    if (spent() > run.limits.tokenBudget) {
      return done({
        reason: 'budget',
        message:
          `Stopped: this request used ${spent()} tokens, over its budget of ` +
          `${run.limits.tokenBudget}. The changes made so far are kept and can be reverted.`,
      });
    }
    if (calls.length === 0) {
      if (turn.stopReason === 'max_tokens') {
        return done({
          reason: 'max_tokens',
          message: 'Stopped: the answer reached the output token limit.',
        });
      }
      return done();
    }

    const results: ToolResultPart[] = [];
    let loop: AgentStop | undefined;
    for (const call of calls) {
      const outcome = await run.runTool(call);
      const event: ToolEvent = {
        id: call.id,
        name: call.name,
        input: call.input,
        isError: outcome.isError,
        summary: outcome.summary,
        at: text.length,
      };
      tools.push(event);
      report();
      run.onTool?.(event);
      results.push({
        type: 'tool_result',
        toolCallId: call.id,
        content: outcome.content,
        isError: outcome.isError,
      });
      if (outcome.isError) {
        const key = `${call.name}\u0000${stableJson(call.input)}`;
        const count = (failures.get(key) ?? 0) + 1;
        failures.set(key, count);
        if (count >= run.limits.loopLimit && !loop) {
          loop = {
            reason: 'loop',
            message:
              `Stopped: the same ${call.name} call failed ${count} times ` +
              `(${outcome.summary}). Retrying it would only spend tokens; change the request ` +
              'or fix the cause, then ask again.',
          };
        }
      }
    }
    transcript.push({ role: 'user', content: results });
    if (loop) return done(loop);
  }
}

/** JSON with sorted keys, so equal inputs give equal keys. */
function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
}
