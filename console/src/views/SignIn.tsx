import { useState } from 'react';
import { ApiError, graphql, refusalOf } from '../api.ts';
import { SIGN_IN_CHECK } from '../documents.ts';

export function SignIn({ reason, onSignedIn }: { reason?: string; onSignedIn(token: string): void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(reason);
  const [checking, setChecking] = useState(false);

  const submit = async () => {
    const pasted = token.trim().replace(/^Bearer\s+/i, '');
    if (!pasted) return setError('Paste a token first.');
    setChecking(true);
    try {
      await graphql(pasted, SIGN_IN_CHECK);
      onSignedIn(pasted);
    } catch (failure) {
      const apiError = failure instanceof ApiError ? failure : new ApiError(String(failure), 'INTERNAL');
      setError(refusalOf(apiError) ?? apiError.message);
    } finally {
      setChecking(false);
    }
  };

  return (
    <main className="sign-in">
      <h1>Render farm console</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <label htmlFor="token">Admin token</label>
        <textarea id="token" rows={4} value={token} onChange={(event) => setToken(event.target.value)} autoFocus spellCheck={false} />
        <p className="muted">
          Kept in this tab until it closes. An admin makes one with <code>npm run token -- --sub &lt;uuid&gt; --admin</code>.
        </p>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={checking}>
          {checking ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
