/**
 * The web console's routes: its sign-in (console-session.ts) and its built files
 * (console-static.ts). The console itself calls only the public HTTP API; these routes only
 * turn a password sign-in into a cookie and serve the page.
 */
import type { FastifyInstance } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';
import { registerConsoleSession } from './console-session.ts';
import { registerConsoleStatic } from './console-static.ts';

export async function registerConsoleRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  await registerConsoleSession(app, { gatehouse, metaOf });
  await registerConsoleStatic(app);
}
