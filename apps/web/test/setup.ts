import { configure } from '@testing-library/react';

// The components talk to a real server (see global-setup.ts): on a loaded 2-core CI machine an
// answer can take seconds, so Testing Library's 1 s default for findBy*/waitFor made tests fail
// for slowness, not for behaviour. A broken behaviour still fails, at this bound.
configure({ asyncUtilTimeout: 15_000 });
