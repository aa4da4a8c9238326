import * as Sentry from '@sentry/nextjs';

Sentry.init({
  dsn: 'https://a1e1d94702583be2eb2ea7ecec180b54@o4506912.ingest.us.sentry.io/4506912345678',
  tracesSampleRate: 0.2,
  replaysSessionSampleRate: 0.0,
  environment: process.env.NEXT_PUBLIC_VERCEL_ENV ?? 'development',
});
