// Pure: desired routing per service → resources per kind of client. `Translator` adds a
// per-service memo, so a change to one service re-encodes only that service's share.
import type { ClientKind, ResourcesByType, ServicePart } from './client-kind.js';
import { EnvoyKind } from './envoy.js';
import { GrpcKind } from './grpc.js';
import type { EnvoyListenerOptions } from './listeners.js';
import type { Routing } from './routing.js';

export type { ResourcesByType } from './client-kind.js';

/** Resources for proxyless gRPC clients: one API listener and route configuration per service. */
export function translateGrpc(routings: readonly Routing[]): ResourcesByType {
  const kind = new GrpcKind();
  return kind.assemble(routings.map((r) => kind.part(r)));
}

/** Resources for Envoy: one socket listener whose route configuration has a virtual host per service. */
export function translateEnvoy(routings: readonly Routing[], listener: EnvoyListenerOptions): ResourcesByType {
  const kind = new EnvoyKind(listener);
  return kind.assemble(routings.map((r) => kind.part(r)));
}

/** Per kind and service: the routing a part was built from (the object, and as JSON) and the part. */
type Memo = Map<string, Map<string, { routing: Routing; key: string; part: ServicePart }>>;

/** The translation of each kind, remembering each service's part until its routing changes. */
export class Translator {
  private readonly memo: Memo = new Map();

  constructor(readonly kinds: readonly ClientKind[]) {
    for (const k of kinds) this.memo.set(k.name, new Map());
  }

  /** One service's part for a kind; throws when it does not translate. The same routing object
   *  is a hit without comparing anything (the reconciler hands an unchanged service's routing
   *  back as it was); an equal routing is a hit by its JSON. */
  part(kind: ClientKind, r: Routing): ServicePart {
    const memo = this.memo.get(kind.name)!;
    const hit = memo.get(r.service.name);
    if (hit?.routing === r) return hit.part;
    const key = JSON.stringify(r);
    if (hit && hit.key === key) {
      hit.routing = r;
      return hit.part;
    }
    const part = kind.part(r);
    memo.set(r.service.name, { routing: r, key, part });
    return part;
  }

  /** Drops services that are gone. */
  forget(services: Iterable<string>): void {
    for (const name of services) for (const memo of this.memo.values()) memo.delete(name);
  }
}
