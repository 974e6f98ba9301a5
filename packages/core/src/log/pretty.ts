/**
 * Readable log lines, for a terminal: pino's JSON line as `12:04:05.123 ERROR message key=value ...`,
 * every field kept (nothing pino wrote is lost), the level named and coloured, the time local.
 * pino-pretty would add fourteen packages for the same.
 */
const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m']
}
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname'])
const p = (n: number, w = 2): string => String(n).padStart(w, '0')

function value (v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]*$/.test(v) && v !== '' ? v : JSON.stringify(v)
  if (v !== null && typeof v === 'object') {
    const o = v as { type?: string, message?: string, stack?: string }
    // An error pino serialised: its message here, the stack on the lines below.
    if (typeof o.message === 'string' && typeof o.stack === 'string') return JSON.stringify(`${o.type ?? 'Error'}: ${o.message}`)
  }
  return JSON.stringify(v)
}

/** One pino JSON line (with its newline) as a readable line; a line that is not JSON passes as is. */
export function prettyLine (line: string, colors: boolean): string {
  let o: Record<string, unknown>
  try { o = JSON.parse(line) as Record<string, unknown> } catch { return line }
  const d = new Date(typeof o.time === 'number' ? o.time : Date.now())
  const [name, color] = LEVELS[o.level as number] ?? [String(o.level), '']
  let out = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)} ${colors ? `${color}${name}\x1b[0m` : name} ${String(o.msg ?? '')}`
  let stack = ''
  for (const k of Object.keys(o)) {
    if (OMIT.has(k) || o[k] === undefined) continue
    out += ` ${colors ? `\x1b[2m${k}=\x1b[0m` : `${k}=`}${value(o[k])}`
    const s = (o[k] as { stack?: unknown } | null)?.stack
    if (typeof s === 'string') stack += `\n    ${s.split('\n').join('\n    ')}`
  }
  return out + stack + '\n'
}
