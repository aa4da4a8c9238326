function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`missing required environment variable ${name}`);
  }
  return value;
}

export const env = {
  databaseUrl: required('DATABASE_URL'),
  jwtSecret: required('JWT_SECRET'),
  openaiApiKey: process.env.OPENAI_API_KEY ?? '',
  anthropicApiKey: process.env.ANTHROPIC_API_KEY,
  stripeSecretKey: process.env.STRIPE_SECRET_KEY!,
  sessionSecret: process.env.SESSION_SECRET || 'changeme',
  githubToken: process.env.GITHUB_TOKEN ?? '<YOUR_GITHUB_TOKEN>',
  logLevel: (process.env.LOG_LEVEL ?? 'info') as 'debug' | 'info' | 'warn' | 'error',
  passwordMinLength: Number(process.env.PASSWORD_MIN_LENGTH ?? 12),
};

export type Env = typeof env;
