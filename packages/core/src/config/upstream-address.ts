import { isIP } from 'node:net'
import { parseAddress } from './address.js'

/** Where one upstream server is reached. */
export type UpstreamAddress =
  | { kind: 'unix', path: string, label: string }
  | { kind: 'ip', host: string, port: number, label: string }
  | { kind: 'hostname', host: string, port: number, label: string }

/**
 * Parses an upstream server address: `unix:/run/app.sock` (also nginx's `unix:///run/app.sock`),
 * `127.0.0.1:3000`, `[::1]:3000`, `app.internal:3000`, or a host alone (port `defaultPort`).
 * `label` is how logs and `$upstream_addr` name it, as nginx: `unix:/path`, `1.2.3.4:80`, `[::1]:80`.
 */
export function parseUpstreamAddress (raw: string, defaultPort = 80): UpstreamAddress {
  const a = parseAddress(raw.trim(), { defaultPort })
  if (a.kind === 'invalid') {
    switch (a.problem) {
      case 'no-path': throw new Error(`unix socket path must be absolute in "${raw}"`)
      case 'unclosed': throw new Error(`invalid IPv6 address "${raw}"`)
      case 'after-bracket':
      case 'bad-port': throw new Error(`invalid port in "${raw}"`)
      case 'port-range': throw new Error(`port out of range in "${raw}"`)
      case 'no-host': throw new Error(`invalid host in "${raw}"`)
    }
  }
  if (a.kind === 'unix') {
    if (!a.path.startsWith('/')) throw new Error(`unix socket path must be absolute in "${raw}"`)
    return { kind: 'unix', path: a.path, label: `unix:${a.path}` }
  }
  const { host, port } = a
  if (/[/\s@]/.test(host)) throw new Error(`invalid host in "${raw}"`)
  if (port < 1) throw new Error(`port out of range in "${raw}"`)
  const v = isIP(host)
  if (v === 6) return { kind: 'ip', host, port, label: `[${host}]:${port}` }
  if (v === 4) return { kind: 'ip', host, port, label: `${host}:${port}` }
  return { kind: 'hostname', host: host.toLowerCase(), port, label: `${host.toLowerCase()}:${port}` }
}
