import { Event } from './constants.js';
import type { AnyProtocol } from '../io/peer.js';
import type { Session } from './session.js';

/**
 * The connections a Server or Client has told its program about, by id, and what taking one
 * of their events out of the queue does: a drained connection may read again; a taken
 * Disconnect lets out the close frame still owed (the program could answer the messages
 * before it until now), and its session stays readable (getData, info) while the program
 * handles it, until the next event is taken.
 */
export class ConnectionTable<S extends Session<unknown, AnyProtocol>> {
  private readonly byId = new Map<number, S>();
  /** The connection whose Disconnect was taken last. */
  private retired: number | undefined;

  get(connId: number): S | undefined {
    return this.byId.get(connId);
  }

  add(session: S): void {
    this.byId.set(session.id, session);
  }

  /** Connections not yet retired. */
  get live(): number {
    return this.byId.size - (this.retired === undefined ? 0 : 1);
  }

  values(): IterableIterator<S> {
    return this.byId.values();
  }

  /** Called for every event leaving the queue, with the session it came from. */
  taken(event: { type: string; message?: string | Buffer }, session: S | undefined): void {
    if (this.retired !== undefined) {
      this.byId.delete(this.retired);
      this.retired = undefined;
    }
    if (session === undefined) return;
    if (event.type === Event.Message) session.dequeued(event.message!);
    else if (event.type === Event.Disconnect) {
      session.peer.close();
      this.retired = session.id;
    }
  }
}
