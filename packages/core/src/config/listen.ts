/** nginx's `listen` addresses, as `proxyctl check` names them and the listeners bind them. */
import path from 'node:path'
import { parseAddress } from './address.js'

/** nginx's default listen: `*:80` when running as root, `*:8000` otherwise. */
export function defaultListen (): string {
  return process.getuid?.() === 0 ? '80' : '8000'
}

export interface ParsedListen { key: string, kind: 'tcp' | 'unix', host: string, port: number, path: string }

/**
 * `8080` | `'127.0.0.1:8080'` | `'[::1]:8080'` | `'*:8080'` | `'unix:/p'` (relative to `baseDir`) |
 * `'example.local'` (port 80). Port 0 is allowed (the system picks one).
 */
export function parseListenAddress (address: string | number, baseDir: string): ParsedListen {
  const s = String(address).trim()
  const a = parseAddress(s, { defaultPort: 80, portAlone: true })
  switch (a.kind) {
    case 'unix': {
      const abs = path.resolve(baseDir, a.path)
      return { key: `unix:${abs}`, kind: 'unix', host: '', port: 0, path: abs }
    }
    case 'inet': {
      const host = a.host === '*' ? '0.0.0.0' : a.host
      const key = host.includes(':') ? `[${host}]:${a.port}` : `${host}:${a.port}`
      return { key, kind: 'tcp', host, port: a.port, path: '' }
    }
  }
  switch (a.problem) {
    case 'no-path': throw new Error('unix: needs a socket path')
    case 'unclosed': throw new Error(`invalid IPv6 address "${s}"`)
    case 'bad-port': throw new Error(`invalid port in "${s}"`)
    case 'port-range': throw new Error(`port out of range in "${s}"`)
    case 'after-bracket':
    case 'no-host': throw new Error(`invalid listen address "${s}"`)
  }
}
