import { isIP } from 'node:net'

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
  const s = raw.trim()
  if (s.startsWith('unix:')) {
    const path = s.slice(5).replace(/^\/\/(?=\/)/, '')
    if (!path.startsWith('/')) throw new Error(`unix socket path must be absolute in "${raw}"`)
    return { kind: 'unix', path, label: `unix:${path}` }
  }
  let host: string
  let port = defaultPort
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end === -1) throw new Error(`invalid IPv6 address "${raw}"`)
    host = s.slice(1, end)
    const rest = s.slice(end + 1)
    if (rest !== '') {
      if (!/^:\d+$/.test(rest)) throw new Error(`invalid port in "${raw}"`)
      port = Number(rest.slice(1))
    }
  } else {
    const colon = s.lastIndexOf(':')
    if (colon === -1) host = s
    else {
      host = s.slice(0, colon)
      const p = s.slice(colon + 1)
      if (!/^\d+$/.test(p)) throw new Error(`invalid port in "${raw}"`)
      port = Number(p)
    }
  }
  if (host === '' || /[/\s@]/.test(host)) throw new Error(`invalid host in "${raw}"`)
  if (port < 1 || port > 65535) throw new Error(`port out of range in "${raw}"`)
  const v = isIP(host)
  if (v === 6) return { kind: 'ip', host, port, label: `[${host}]:${port}` }
  if (v === 4) return { kind: 'ip', host, port, label: `${host}:${port}` }
  return { kind: 'hostname', host: host.toLowerCase(), port, label: `${host.toLowerCase()}:${port}` }
}
