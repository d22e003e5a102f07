import { describeThreeInstances } from './session.ts';

// The scale-out session (see session.ts) with three Node server processes.
describeThreeInstances('node');
