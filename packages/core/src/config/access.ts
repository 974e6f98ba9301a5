/**
 * nginx's allow/deny (ngx_http_access_module): rules in order, the first that matches the client
 * decides; none matching allows. Written as nginx writes them: `'allow 10.0.0.0/8'`,
 * `'deny 2001:db8::/32'`, `'allow 127.0.0.1'`, `'allow unix:'`, `'deny all'`.
 */
import { BlockList, isIP } from 'node:net'

export interface AccessRule {
  readonly allow: boolean
  /** The client addresses it matches; `all` matches every client, `unix` a unix-socket one. */
  readonly match: BlockList | 'all' | 'unix'
  readonly source: string
}

/** Reads one rule; throws a message for a config error. */
export function parseAccessRule (text: string): AccessRule {
  const m = /^\s*(allow|deny)\s+(\S+)\s*$/.exec(text)
  if (m === null) throw new Error(`expected "allow ADDRESS" or "deny ADDRESS" (an address, a CIDR, "unix:" or "all"), got "${text}"`)
  const allow = m[1] === 'allow'
  const what = m[2] as string
  if (what === 'all') return { allow, match: 'all', source: text }
  if (what === 'unix:') return { allow, match: 'unix', source: text }
  const slash = what.indexOf('/')
  const address = slash === -1 ? what : what.slice(0, slash)
  const family = isIP(address)
  if (family === 0) throw new Error(`invalid address "${what}" in "${text}"`)
  const max = family === 4 ? 32 : 128
  const bits = slash === -1 ? max : Number(what.slice(slash + 1))
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash !== -1 && !/^\d+$/.test(what.slice(slash + 1)))) throw new Error(`invalid prefix length in "${text}"`)
  const list = new BlockList()
  list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6')
  return { allow, match: list, source: text }
}

/** Whether the rules let a client at `address` in (undefined: a unix socket). */
export function accessAllowed (rules: readonly AccessRule[], address: string | undefined): boolean {
  // A client on a dual-stack socket (::ffff:10.0.0.1) is its IPv4 address, as nginx reads it.
  const ip = address?.startsWith('::ffff:') === true && isIP(address.slice(7)) === 4 ? address.slice(7) : address
  const family = ip === undefined ? 0 : isIP(ip)
  for (const rule of rules) {
    if (rule.match === 'all') return rule.allow
    if (rule.match === 'unix') { if (family === 0) return rule.allow; continue }
    if (family !== 0 && rule.match.check(ip as string, family === 4 ? 'ipv4' : 'ipv6')) return rule.allow
  }
  return true
}
