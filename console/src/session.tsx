// The signed-in operator: the token (kept for this browser tab's session, never in localStorage)
// and the live connection made with it.
import { createContext, useContext, useEffect, useState } from 'react';
import { type Connection, Live } from './api.ts';

const KEY = 'render-console-token';

export const storedToken = () => sessionStorage.getItem(KEY);
export const storeToken = (token: string) => sessionStorage.setItem(KEY, token);
export const forgetToken = () => sessionStorage.removeItem(KEY);

export interface Session {
  token: string;
  live: Live;
  /** Back to the sign-in page, with the reason shown there. */
  signOut(reason?: string): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in console');
  return session;
}

export function useConnection(live: Live): Connection {
  const [state, setState] = useState(live.state);
  useEffect(() => live.watch(setState), [live]);
  return state;
}
