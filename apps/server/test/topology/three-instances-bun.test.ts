import { describeThreeInstances } from './session.ts';

// The same scale-out session (see session.ts) with the three servers on Bun
// (`npm run start:bun`): sign-in, refresh rotation, shared rate limits, project events, logout,
// collaboration, SIGKILL mid-session and a queued assistant job, all over HTTP and WebSocket.
describeThreeInstances('bun');
