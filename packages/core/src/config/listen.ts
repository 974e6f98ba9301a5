/** nginx's `listen` addresses, as `proxyctl check` names them and the listeners bind them. */
import path from 'node:path'

/** nginx's default listen: `*:80` when running as root, `*:8000` otherwise. */
export function defaultListen (): string {
  return process.getuid?.() === 0 ? '80' : '8000'
}

export interface ParsedListen { key: string, kind: 'tcp' | 'unix', host: string, port: number, path: string }

/** `8080` | `'127.0.0.1:8080'` | `'[::1]:8080'` | `'*:8080'` | `'unix:/p'` | `'example.local'` (port 80). */
export function parseListenAddress (address: string | number, baseDir: string): ParsedListen {
  const s = String(address).trim()
  if (s.startsWith('unix:')) {
    const p = s.slice(5)
    if (p === '') throw new Error('unix: needs a socket path')
    const abs = path.resolve(baseDir, p)
    return { key: `unix:${abs}`, kind: 'unix', host: '', port: 0, path: abs }
  }
  let host: string
  let portStr: string
  if (/^\d+$/.test(s)) { host = '0.0.0.0'; portStr = s } else if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end === -1) throw new Error(`invalid IPv6 address "${s}"`)
    host = s.slice(1, end)
    const rest = s.slice(end + 1)
    if (rest === '') portStr = '80'
    else if (rest.startsWith(':')) portStr = rest.slice(1)
    else throw new Error(`invalid listen address "${s}"`)
  } else {
    const colon = s.lastIndexOf(':')
    if (colon === -1) { host = s; portStr = '80' } else { host = s.slice(0, colon); portStr = s.slice(colon + 1) }
    if (host === '*') host = '0.0.0.0'
  }
  if (!/^\d+$/.test(portStr)) throw new Error(`invalid port in "${s}"`)
  const port = Number(portStr)
  if (port > 65535) throw new Error(`port out of range in "${s}"`)
  if (host === '') throw new Error(`invalid listen address "${s}"`)
  const key = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  return { key, kind: 'tcp', host, port, path: '' }
}
