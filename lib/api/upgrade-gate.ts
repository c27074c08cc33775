import type { Rejection } from '../core/handshake.js';
import type { AnyProtocol } from '../io/peer.js';
import type { Session } from './session.js';

export interface UpgradeGateOptions {
  /** More simultaneous connections (open ones and requests waiting for an answer) get 503. */
  maxConnections: number | undefined;
}

/**
 * Decides whether a valid handshake request may become a connection (a server that is stopping
 * or full answers 503), and holds the requests that wait for the program's `accept` or `reject`
 * (manualAccept).
 */
export class UpgradeGate<S extends Session<unknown, AnyProtocol>> {
  /** Set by stop(): every new request gets 503. */
  stopping = false;
  private readonly waiting = new Map<number, S>();

  constructor(private readonly options: UpgradeGateOptions) {}

  /** Why a request must be refused now, with `open` connections open; undefined if it may go on. */
  refusal(open: number): Rejection | undefined {
    if (this.stopping) return { status: 503, reason: 'server is stopping' };
    const max = this.options.maxConnections;
    if (max !== undefined && open + this.waiting.size >= max) return { status: 503, reason: `connection limit of ${max} reached` };
    return undefined;
  }

  /** Holds a request until the program answers it. */
  hold(session: S): void {
    this.waiting.set(session.id, session);
  }

  /** Takes the waiting request with this id; undefined if none waits (answered, timed out, gone). */
  take(connId: number): S | undefined {
    const session = this.waiting.get(connId);
    this.waiting.delete(connId);
    return session?.peer.protocol.state === 'connecting' ? session : undefined;
  }

  /** The request ended without an answer (timeout, the client left). */
  forget(session: S): void {
    this.waiting.delete(session.id);
  }

  /** Ids of the requests still waiting. */
  waitingIds(): number[] {
    return [...this.waiting.keys()];
  }
}
