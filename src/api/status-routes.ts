// GET /v1/status: what an operator needs when something is off — whether the state is
// persisted, which stored values were quarantined at start-up, and which services are not
// published as declared, and (with several replicas) which replicas are live and which leads.
import type { FastifyInstance } from 'fastify';
import type { ReplicaStatus } from '../replica/replication.js';
import type { QuarantineEntry } from '../store/store.js';
import type { StateWriter } from '../state/writer.js';
import { statusDoc } from './operations-docs.js';
import type { PublishProblems } from './services-routes.js';

export function statusRoutes(writer: StateWriter, problems: PublishProblems, quarantined: () => Promise<QuarantineEntry[]>, replicas?: () => ReplicaStatus) {
  return (app: FastifyInstance) => {
    app.get('/v1/status', { schema: statusDoc }, async () => ({
      persistence: writer.persistence(),
      ...(replicas ? { replicas: replicas() } : {}),
      quarantined: await quarantined(),
      services: Object.fromEntries([...problems()].map(([name, problem]) => [name, { published: false, problem }])),
    }));
  };
}
