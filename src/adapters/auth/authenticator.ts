// Establishes the actor from a request's credentials. A credential that is present but wrong is
// refused rather than downgraded to anonymous, so a typo never silently loses privileges or data.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config.ts';
import type { Actor } from '../../domain/actor.ts';
import { anonymous } from '../../domain/actor.ts';
import { UnauthenticatedError } from '../../domain/errors.ts';
import { systemClock, type Clock, type NonceStore } from '../../ports.ts';
import { verifyAgentRequest, type AgentRequestHeaders } from './agent-signature.ts';
import { createJwtVerifier } from './jwt.ts';

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export interface AgentRequest {
  headers: AgentRequestHeaders;
  method: string;
  path: string;
  rawBody: Buffer | string | undefined;
}

export interface Authenticator {
  fromAuthorization(header: string | undefined): Promise<Actor>;
  fromAgentRequest(request: AgentRequest): Promise<Actor>;
}

// Comparing fixed-length digests keeps the comparison time independent of the tokens' lengths.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function createAuthenticator(config: Config, nonceStore: NonceStore, clock: Clock = systemClock): Authenticator {
  const verifyJwt = createJwtVerifier({ secret: config.jwt.secret, jwksUrl: config.jwt.jwksUrl, clock });
  const serviceTokenDigests = config.serviceTokens.map(digest);

  const isServiceToken = (token: string): boolean => {
    const candidate = digest(token);
    // No early exit: the time taken does not reveal whether or which token matched.
    return serviceTokenDigests.reduce((matched, known) => timingSafeEqual(known, candidate) || matched, false);
  };

  return {
    async fromAuthorization(header) {
      if (header === undefined || header.trim() === '') return anonymous;
      const token = BEARER.exec(header)?.[1];
      if (token === undefined) {
        throw new UnauthenticatedError('Authorization header must be "Bearer <token>"');
      }
      if (isServiceToken(token)) return { kind: 'service', name: 'service' };
      const user = await verifyJwt(token);
      return { kind: 'user', ...user };
    },

    async fromAgentRequest(request) {
      const nodeId = await verifyAgentRequest({
        headers: request.headers,
        method: request.method,
        path: request.path,
        rawBody: request.rawBody,
        nodeHmacSecret: config.nodeHmacSecret,
        nonceStore,
        nowSeconds: Math.floor(clock.now().getTime() / 1000),
      });
      return { kind: 'node', nodeId };
    },
  };
}
