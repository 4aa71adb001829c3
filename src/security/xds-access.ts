// Who may use the xDS port for what, as Sluice decides it: the xDS server, node groups and the
// telemetry receivers each get one hook from here.
// - Without mutual TLS nobody is authenticated: every client may claim any node, read every
//   service and report load (start-up warns).
// - With mutual TLS and no policy: any client with a certificate the CA signed may do all that.
// - With a policy: a client's identity (identity.ts) must be allowed by a rule to claim its node
//   id and cluster, and the node reads only the services those rules grant.
// Load reports count only from the identity that holds the node's xDS stream (reportedBySameIdentity).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ReadPolicy, Scope } from '../reconcile/node-groups.js';
import type { StreamEnding } from '../xds/server.js';
import type { XdsPeer } from '../xds/peer.js';
import { identityOf } from './identity.js';
import type { ClaimedNode, PolicyDecision, XdsPolicy } from './policy.js';

const NOTHING: Scope = new Set<string>();

export interface XdsAccessOptions {
  /** Client certificates are required and verified against the CA (`--xds-tls-ca`). */
  mutualTls: boolean;
  /** The current policy (`--xds-policy`), if any; read on every decision. */
  policy?: () => XdsPolicy;
  log: Logger;
}

export class XdsAccess {
  constructor(private readonly opts: XdsAccessOptions) {
    if (opts.policy && !opts.mutualTls) throw new Error('an xDS policy needs mutual TLS: identities come from client certificates');
  }

  /** The client's identity, or why it has none (undefined without mutual TLS: nobody has one). */
  identity(peer: XdsPeer): { identity: string } | { problem: string } | undefined {
    if (!this.opts.mutualTls) return undefined;
    // grpc-js refuses the handshake without a verified certificate; this is the second lock.
    if (!peer.certificate) return { problem: 'a client certificate signed by the xDS CA is required' };
    return identityOf(peer.certificate);
  }

  /** The xDS server's and the telemetry receivers' `authorize`: why `node` may not be claimed from `peer`, or undefined. */
  authorize = (node: ClaimedNode, peer: XdsPeer): string | undefined => {
    const d = this.decide(node, peer);
    return d.allowed ? undefined : d.message;
  };

  /** NodeGroups' ReadPolicy: the services the node may read ('*' without a policy). */
  readPolicy: ReadPolicy = (node, peer) => {
    const d = this.decide(node, peer);
    return d.allowed ? d.services : NOTHING;
  };

  /** Whether two peers are the same client as far as Sluice can tell: the same identity with
   *  mutual TLS; anyone without (nobody is authenticated). */
  sameIdentity = (a: XdsPeer, b: XdsPeer): boolean => {
    if (!this.opts.mutualTls) return true;
    const ia = this.identity(a);
    const ib = this.identity(b);
    return !!ia && !!ib && 'identity' in ia && 'identity' in ib && ia.identity === ib.identity;
  };

  /**
   * After a policy change: the ending for an attached stream whose node is now refused
   * (PERMISSION_DENIED) or would now read other services than its group serves (UNAVAILABLE: the
   * client reconnects at once and is grouped under the new policy); undefined to keep it.
   */
  endingAfterPolicyChange(stream: { node: ClaimedNode; peer: XdsPeer; group: string }, groupNow: string): StreamEnding | undefined {
    const refusal = this.authorize(stream.node, stream.peer);
    if (refusal) return { code: grpc.status.PERMISSION_DENIED, message: refusal };
    if (groupNow !== stream.group) return { code: grpc.status.UNAVAILABLE, message: 'the xDS access policy changed what this node may read: reconnect' };
    return undefined;
  }

  private decide(node: ClaimedNode, peer: XdsPeer): PolicyDecision {
    const who = this.identity(peer);
    if (!who) return { allowed: true, services: '*' };
    if ('problem' in who) return { allowed: false, message: who.problem };
    const policy = this.opts.policy?.();
    if (!policy) return { allowed: true, services: '*' };
    return policy.decide(who.identity, node);
  }
}

/** Says at start-up who can use the xDS port: a warning whenever clients are not authenticated
 *  beyond this machine. */
export function announceXdsSecurity(log: Logger, opts: { tls: boolean; mutualTls: boolean; policy?: string; host: string }): void {
  const loopback = /^(127\.|::1$|localhost$)/.test(opts.host);
  if (opts.mutualTls)
    log.info(
      { policy: opts.policy ?? null },
      opts.policy
        ? 'xDS clients are authenticated by certificate; the xDS policy decides which node ids they may claim and which services they read'
        : 'xDS clients are authenticated by certificate; without --xds-policy every authenticated client may claim any node id and reads every service',
    );
  else if (opts.tls)
    log.warn(
      'xDS over TLS without --xds-tls-ca: clients are NOT authenticated. Anyone who can reach the xDS port reads every service and can send load reports that move rollout analysis',
    );
  else if (!loopback)
    log.warn(
      { host: opts.host },
      'xDS in plaintext on a non-loopback address: clients are NOT authenticated. Anyone who can reach the xDS port reads every service and can send load reports that move rollout analysis',
    );
  else log.info('xDS in plaintext on loopback: clients on this machine are not authenticated');
}
