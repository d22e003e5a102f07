// Waiting for what happens a moment later (events, sockets, other processes), bounded, the same
// under vitest and `bun test`.

/**
 * Polls `fn` until it returns a truthy value (bounded); returns it. `what` names the wait in the
 * error; as a function it is asked at the timeout, so it can describe the state then.
 */
export async function until<T>(
  fn: () => T | Promise<T>,
  ms = 10_000,
  what: string | (() => string | Promise<string>) = 'condition',
  everyMs = 25,
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const described = typeof what === 'function' ? await what() : what;
  throw new Error(
    `timed out waiting for ${described} (last: ${JSON.stringify(last)?.slice(0, 200)})`,
  );
}
