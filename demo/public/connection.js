// A WebSocket that comes back after a drop: it retries with a growing delay (0.5 s doubling up
// to 10 s, reset once a connection opens) and reports its state through callbacks.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export class Connection {
  /**
   * @param {string} url
   * @param {{ open(): void, message(data: any): void, closed(retryAt: number): void }} on
   */
  constructor(url, on) {
    this.url = url;
    this.on = on;
    this.delay = FIRST_DELAY_MS;
    this.socket = undefined;
  }

  start() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.delay = FIRST_DELAY_MS;
      this.on.open();
    };
    socket.onmessage = (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      this.on.message(data);
    };
    socket.onclose = () => {
      this.socket = undefined;
      const wait = this.delay;
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
      this.on.closed(Date.now() + wait);
      setTimeout(() => this.start(), wait);
    };
  }

  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends one request; false when offline (nothing is queued). */
  send(request) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(request));
    return true;
  }
}
