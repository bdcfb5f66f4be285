// `npm run gateway` on a port already taken: one line naming it and PORT, as the service says it.
import { describe, it } from 'vitest';
import { expectPortRefusal, holdPort, launch } from '../support/process.ts';

describe('npm run gateway', () => {
  it('refuses a port already in use with one line naming it and PORT', { timeout: 60_000 }, async () => {
    const { port, release } = await holdPort();
    const gateway = launch('npm', ['run', 'gateway'], { ...process.env, PORT: String(port), HOST: '127.0.0.1' });
    try {
      await expectPortRefusal(gateway, port);
    } finally {
      gateway.kill();
      await release();
    }
  });
});
