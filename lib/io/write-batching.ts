/**
 * When the output of the sockets is written. With several sockets open, once per turn of the
 * event loop, after every ready socket was read (setImmediate runs right after that phase): a
 * burst of writes wakes a peer process once for many sockets, where a write after each read
 * would wake it for each. A lone socket is written right after the current callback
 * (process.nextTick): batching gains nothing there.
 */

/** What has output to write this turn. */
export interface Flushable {
  flush(): void;
}

/** Sockets not closed yet, in this process. */
let openSockets = 0;
const unflushed: Flushable[] = [];

export function socketOpened(): void {
  openSockets++;
}

export function socketClosed(): void {
  openSockets--;
}

/** True while writes (and the wake-ups of programs awaiting events) are batched per turn. */
export function batchingAcrossSockets(): boolean {
  return openSockets > 1;
}

/** Schedules `target.flush()` for this turn; call once per turn and target. */
export function writeThisTurn(target: Flushable): void {
  if (unflushed.length === 0) {
    if (batchingAcrossSockets()) setImmediate(flushAll);
    else process.nextTick(flushAll);
  }
  unflushed.push(target);
}

/** Writes everything scheduled so far (a woken program's answers go out in the same turn). */
export function flushAll(): void {
  for (let i = 0; i < unflushed.length; i++) unflushed[i]!.flush();
  unflushed.length = 0;
}
