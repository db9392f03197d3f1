/**
 * The web console's routes: its sign-in (console-session.ts) and its built files
 * (console-static.ts), and the owners' what-if route (console-policy-routes.ts), which is part
 * of the public API. The console itself calls only the public HTTP API.
 */
import type { FastifyInstance } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';
import { registerConsoleSession } from './console-session.ts';
import { registerConsoleStatic } from './console-static.ts';
import { registerSimulateRoute } from './console-policy-routes.ts';

export async function registerConsoleRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  await registerConsoleSession(app, { gatehouse, metaOf });
  await registerConsoleStatic(app);
  await registerSimulateRoute(app, gatehouse);
}
