import WebSocket from 'ws';

/** Opens a `ws` client (an independent peer) and records it in `clients` for cleanup; resolves once open. */
export function openWs(clients: WebSocket[], url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
