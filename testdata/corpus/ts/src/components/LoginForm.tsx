import React, { useState } from 'react';

type Props = { onSubmit: (username: string, password: string) => Promise<void> };

export function LoginForm({ onSubmit }: Props) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [showPassword, setShowPassword] = useState(false);
  const passwordField = React.useRef<HTMLInputElement>(null);

  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        await onSubmit(username, password);
        setPassword('');
      }}
    >
      <label htmlFor="username">Username</label>
      <input id="username" value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" />
      <label htmlFor="password">Password</label>
      <input
        id="password"
        ref={passwordField}
        type={showPassword ? 'text' : 'password'}
        value={password}
        placeholder="••••••••"
        autoComplete="current-password"
        onChange={(e) => setPassword(e.target.value)}
      />
      <button type="button" onClick={() => setShowPassword((v) => !v)}>
        {showPassword ? 'Hide' : 'Show'}
      </button>
      <button type="submit" disabled={!username || !password}>
        Sign in
      </button>
    </form>
  );
}
