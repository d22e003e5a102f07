import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';

/**
 * The client's address. `X-Forwarded-For` is believed only when the direct peer is a configured
 * proxy, and then only up to the first hop that is not itself a trusted proxy.
 */
export function clientIp(c: Context, trustedProxies: readonly string[]): string {
  let peer = 'unknown';
  try {
    peer = normalise(getConnInfo(c).remote.address ?? 'unknown');
  } catch {
    // app.request() in tests has no socket
  }
  if (!trustedProxies.includes(peer)) return peer;
  const forwarded = c.req.header('x-forwarded-for');
  if (!forwarded) return peer;
  const hops = forwarded
    .split(',')
    .map((h) => normalise(h.trim()))
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trustedProxies.includes(hops[i]!)) return hops[i]!;
  }
  return hops[0] ?? peer;
}

function normalise(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
