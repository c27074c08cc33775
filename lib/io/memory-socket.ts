import { Duplex } from 'node:stream';
import type { Clock, Timer } from './clock.js';
import type { MemoryPath } from './memory-path.js';

/** Where a memory socket is, and where its peer is. */
export interface SocketAddresses {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/**
 * One end of a memory connection: a Duplex that stands in for a net.Socket. What it writes goes
 * on its outgoing path, what arrives on its incoming path is read from it; end() sends a FIN
 * after the data, destroy() a FIN too, and from then on it reads nothing. It has a net.Socket's
 * addresses, `connecting`, 'connect', setNoDelay (nothing to change here) and setTimeout (idle time
 * on the network's clock), which is what clients written for a net.Socket (ws, node:http) use.
 */
export class MemorySocket extends Duplex {
  /** This end's address (a client's: 127.0.0.1). */
  readonly localAddress: string;
  /** This end's port. */
  readonly localPort: number;
  /** The other end's address. */
  readonly remoteAddress: string;
  /** The other end's port. */
  readonly remotePort: number;
  /** True until the connection is set up (a client's 'connect'). */
  connecting: boolean;
  private idleMs = 0;
  private idleTimer: Timer | undefined;
  private finSent = false;

  /** @internal */
  constructor(
    private readonly outgoing: MemoryPath,
    private readonly incoming: MemoryPath,
    addresses: SocketAddresses,
    private readonly clock: Clock,
    options: { allowHalfOpen: boolean; connecting: boolean },
  ) {
    super({ allowHalfOpen: options.allowHalfOpen });
    this.localAddress = addresses.localAddress;
    this.localPort = addresses.localPort;
    this.remoteAddress = addresses.remoteAddress;
    this.remotePort = addresses.remotePort;
    this.connecting = options.connecting;
    incoming.attachReader(this);
  }

  /**
   * The connection is set up: data may flow, 'connect' is emitted.
   * @internal
   */
  connected(): void {
    this.connecting = false;
    this.outgoing.writerConnected();
    this.emit('connect');
  }

  /** As net.Socket's: nothing to change on a memory network. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** Emits 'timeout' after `ms` without a byte either way (0 turns it off), as net.Socket does. */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    this.armIdleTimer();
    return this;
  }

  // What the incoming path hands over.

  /**
   * Bytes held unread (the stream's buffer).
   * @internal
   */
  get unread(): number {
    return this.readableLength;
  }

  /**
   * Bytes that arrived; false once the stream wants no more until it reads.
   * @internal
   */
  deliver(bytes: Buffer): boolean {
    this.armIdleTimer();
    return this.push(bytes);
  }

  /**
   * The writer's FIN: nothing more will come.
   * @internal
   */
  deliverEnd(): void {
    this.push(null);
    // As net.Socket does at EOF: 'end' comes even when nobody reads, once nothing is left unread.
    this.read(0);
  }

  // Duplex.

  /** @internal */
  override _read(): void {
    this.incoming.readerWantsMore();
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.armIdleTimer();
    this.outgoing.write([chunk], callback);
  }

  /** @internal */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.armIdleTimer();
    this.outgoing.write(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    this.sendFin();
    callback();
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.idleTimer?.cancel();
    this.outgoing.writerGone();
    this.sendFin();
    this.incoming.readerClosed();
    callback(error);
  }

  private sendFin(): void {
    if (this.finSent) return;
    this.finSent = true;
    this.outgoing.end();
  }

  private armIdleTimer(): void {
    this.idleTimer?.cancel();
    this.idleTimer = this.idleMs > 0 && !this.destroyed ? this.clock.setTimeout(() => this.emit('timeout'), this.idleMs) : undefined;
  }
}
