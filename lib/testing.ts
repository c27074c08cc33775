export { MemoryConnection, MemoryListener, MemoryNetwork } from './io/memory-network.js';
export type { Delivery, Direction, MemoryNetworkOptions } from './io/memory-network.js';
export type { MemoryPath } from './io/memory-path.js';
export type { MemorySocket } from './io/memory-socket.js';
export { VirtualClock } from './io/virtual-clock.js';
