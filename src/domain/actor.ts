// Who is calling. Services take the actor as an argument and decide what it may do; transports
// only establish it.
export type Actor =
  | { kind: 'anonymous' }
  | { kind: 'user'; userId: string; isAdmin: boolean; plan: string | null; isReseller: boolean }
  | { kind: 'service'; name: string }
  | { kind: 'node'; nodeId: string };

export const anonymous: Actor = { kind: 'anonymous' };
