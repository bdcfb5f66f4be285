import { StrictMode, useCallback, useEffect, useLayoutEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { type Connection, Live } from './api.ts';
import { forgetToken, type Session, SessionContext, storedToken, storeToken, useConnection } from './session.tsx';
import { Fleet } from './views/Fleet.tsx';
import { JobPage } from './views/Job.tsx';
import { Jobs } from './views/Jobs.tsx';
import { NodePage } from './views/Node.tsx';
import { Rollouts } from './views/Rollouts.tsx';
import { SignIn } from './views/SignIn.tsx';
import './styles.css';

type Route = { view: 'fleet' } | { view: 'node'; id: string } | { view: 'jobs' } | { view: 'job'; id: string } | { view: 'rollouts' };

/** The view in the URL's fragment (#/nodes/<id>), so that every view can be bookmarked and shared. */
function routeOf(hash: string): Route {
  const [, section, id] = hash.replace(/^#/, '').split('/');
  if (section === 'nodes' && id) return { view: 'node', id };
  if (section === 'jobs' && id) return { view: 'job', id };
  if (section === 'jobs') return { view: 'jobs' };
  if (section === 'rollouts') return { view: 'rollouts' };
  return { view: 'fleet' };
}

function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return routeOf(hash);
}

const SECTIONS = [
  { href: '#/fleet', label: 'Fleet', views: ['fleet', 'node'] },
  { href: '#/jobs', label: 'Queue', views: ['jobs', 'job'] },
  { href: '#/rollouts', label: 'Rollouts', views: ['rollouts'] },
];

const CONNECTION_LABELS: Record<Connection, string> = {
  idle: '',
  connecting: '○ Connecting',
  live: '● Live',
  reconnecting: '◌ Reconnecting',
};

function Console({ session }: { session: Session }) {
  const route = useRoute();
  const connection = useConnection(session.live);
  useEffect(() => {
    document.querySelector('main')?.focus();
  }, [route.view]);
  return (
    <>
      <header className="top">
        {/* Not a fragment link: the fragment holds the route. */}
        <a
          className="skip"
          href="#content"
          onClick={(event) => {
            event.preventDefault();
            document.getElementById('content')?.focus();
          }}
        >
          Skip to content
        </a>
        <strong className="brand">Render farm</strong>
        <nav aria-label="Sections">
          {SECTIONS.map((section) => (
            <a key={section.href} href={section.href} aria-current={section.views.includes(route.view) ? 'page' : undefined}>
              {section.label}
            </a>
          ))}
        </nav>
        <span className="connection" data-connection={connection} role="status">
          {CONNECTION_LABELS[connection]}
        </span>
        <button type="button" onClick={() => session.signOut()}>
          Sign out
        </button>
      </header>
      <main id="content" tabIndex={-1}>
        {route.view === 'fleet' && <Fleet />}
        {route.view === 'node' && <NodePage key={route.id} id={route.id} />}
        {route.view === 'jobs' && <Jobs />}
        {route.view === 'job' && <JobPage key={route.id} id={route.id} />}
        {route.view === 'rollouts' && <Rollouts />}
      </main>
    </>
  );
}

function App() {
  const [token, setToken] = useState(storedToken);
  const [reason, setReason] = useState<string>();
  const signOut = useCallback((why?: string) => {
    forgetToken();
    setReason(why);
    setToken(null);
  }, []);
  const [live, setLive] = useState<Live>();
  // Before the browser paints, so that signing in never shows the sign-in page once more.
  useLayoutEffect(() => {
    if (!token) return;
    const opened = new Live(token, signOut);
    setLive(opened);
    return () => {
      setLive(undefined);
      opened.dispose();
    };
  }, [token, signOut]);
  const session = useMemo(() => (token && live ? { token, live, signOut } : undefined), [token, live, signOut]);
  if (!session) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(pasted) => {
          storeToken(pasted);
          setReason(undefined);
          setToken(pasted);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Console session={session} />
    </SessionContext.Provider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
