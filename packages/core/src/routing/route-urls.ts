/**
 * The internal URLs core routes requests to inside Fastify after selecting server and location.
 * A leaf module (no imports), so config and routing can both use it.
 */
export const ROUTE_PREFIX = '/__proxyctl/'
export const BAD_REQUEST_ROUTE = `${ROUTE_PREFIX}E400`
/** A rewrite's redirect, or its cycle (500). */
export const REWRITE_ROUTE = `${ROUTE_PREFIX}RW`
export const serverReturnRoute = (position: number): string => `${ROUTE_PREFIX}S${position}R`
export const locationRoute = (id: number): string => `${ROUTE_PREFIX}L${id}`
export const serverFallbackRoute = (position: number): string => `${ROUTE_PREFIX}S${position}`
