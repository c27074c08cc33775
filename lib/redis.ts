export { redisBroker } from './api/redis-broker.js';
export type { Listener, RedisBroker, RedisBrokerOptions, RedisClientLike } from './api/redis-broker.js';
export type { Broker, BrokerHost } from './api/broker.js';
