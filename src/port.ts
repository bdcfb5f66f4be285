// The port the service listens on, checked before start-up opens anything: a port already taken
// must stop `npm start` with one line, not after the embedded database has been created and
// migrated, and not with a stack trace.
import { createServer } from 'node:net';
import type { Config } from './config.ts';

/** The service cannot listen where its settings say; the message is the one line to show. */
export class PortUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortUnavailableError';
  }
}

/** What a failure to listen means for the person starting the service, when a setting fixes it; else the error itself. */
export function explainListenError(error: unknown, { port, host }: Pick<Config, 'port' | 'host'>): unknown {
  switch ((error as { code?: unknown } | undefined)?.code) {
    case 'EADDRINUSE':
      return new PortUnavailableError(`Port ${port} is already in use on ${host}: stop what listens there, or set PORT to a free port.`);
    case 'EACCES':
      return new PortUnavailableError(`Port ${port} on ${host} needs privileges this process does not have: set PORT to a port above 1023.`);
    case 'EADDRNOTAVAIL':
      return new PortUnavailableError(`${host} is not an address of this machine: set HOST to one of its addresses, or 0.0.0.0 for all.`);
    default:
      return error;
  }
}

/**
 * Listens on the configured address and lets it go again. Another process could still take the
 * port before the service listens; that rare start fails later, with the same message.
 */
export async function ensurePortFree(config: Pick<Config, 'port' | 'host'>): Promise<void> {
  // Port 0 asks the system for any free port.
  if (config.port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ port: config.port, host: config.host, exclusive: true }, () => probe.close(() => resolve()));
  }).catch((error: unknown) => {
    throw explainListenError(error, config);
  });
}
