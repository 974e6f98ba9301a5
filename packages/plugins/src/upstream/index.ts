export { Peer, DEFAULT_FAIL_TIMEOUT, DEFAULT_MAX_FAILS, type PeerOptions } from './peer.js'
export {
  PeerGroup,
  type CustomSelect,
  type GroupPolicy,
  type NoPeer,
  type PeerGroupOptions,
  type Selection
} from './peer-group.js'
export { usable, type Balancer, type SelectInput } from './balancer/balancer.js'
export { RoundRobinBalancer, smoothWeighted } from './balancer/round-robin.js'
export { LeastConnBalancer } from './balancer/least-conn.js'
export { IpHashBalancer, ipHashKey } from './balancer/ip-hash.js'
export { ConsistentHashBalancer, HashBalancer, chashHostPort } from './balancer/consistent-hash.js'
export { RandomTwoBalancer, type RandomTwoOptions } from './balancer/random-two.js'
export { crc32 } from './crc32.js'
export {
  ActiveHealthChecker,
  HEALTH_CHECK_DEFAULTS,
  healthCheckSettings,
  type CheckResult,
  type HealthCheckSettings,
  type HealthCheckTarget
} from './health/active.js'
