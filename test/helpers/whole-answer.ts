/**
 * Whole answers, as the nginx comparisons compare them: every response on a connection (status
 * line, every header, the full body), whether the connection closed, and every request the
 * upstream received (request line, every header, the full body), or nothing. Lines of text, so a
 * table states them and a difference prints readably.
 *
 * What is masked or left out, everywhere and only this (each by name in `MASKED`):
 *  - `date`: its value (the clock); its presence is compared.
 *  - `server`: left out; deliberate (README, WebSockets: proxyctl sends no Server header).
 *  - `signature`: an error page's signature line (`<hr><center>nginx/1.22.1</center>`, proxyctl's
 *    `<hr><center>proxyctl</center>`) is written `{server}`, and Content-Length counts that
 *    placeholder; deliberate (README).
 *  - `case`: header names and Connection's value in lower case (case-insensitive, RFC 9110;
 *    proxyctl passes an upstream's names in its case, README).
 *  - `boundary`: a multipart/byteranges boundary of nginx's form (20 digits) is written
 *    `{boundary}` in Content-Type and body, and Content-Length counts that placeholder: its value
 *    is a counter, arbitrary by design; its form and every place it appears are compared.
 *  - `expires`: an Expires value is written as its distance from the answer's Date (`{date}+Ns`):
 *    it is the clock plus `expires`; the distance is compared.
 *  - upstream request headers are sorted (their order is not part of the rule).
 */
import crypto from 'node:crypto'
import type http from 'node:http'
import { errorPageBody } from '@proxyctl/core/internal'
import { send, splitResponses, type Target } from './raw-http.js'

/** The masks, by name, with their reason. */
export const MASKED = {
  date: 'the value is the clock; its presence is compared',
  server: 'deliberate: proxyctl sends no Server header (nginx names itself)',
  signature: "deliberate: an error page's signature line names the server",
  case: 'header names and Connection tokens are case-insensitive (RFC 9110)',
  boundary: 'a multipart boundary is a counter, arbitrary by design; its form and places are compared',
  expires: 'Expires is the clock plus `expires`; its distance from Date is compared'
} as const

/** Bodies longer than this are shown as their length and sha256 (still the whole body compared). */
const SHOWN = 2048
const BOUNDARY = /^multipart\/byteranges; boundary=(\d{20})$/
const SIGNATURE = /<hr><center>[^<]*<\/center>\r\n<\/body>\r\n<\/html>\r\n$/

function bodyLine (body: Buffer): string {
  if (body.length <= SHOWN) return `  body ${JSON.stringify(body.toString('latin1'))}`
  return `  body ${body.length} bytes sha256 ${crypto.createHash('sha256').update(body).digest('hex').slice(0, 16)}`
}

/** One response as lines: the status line, `  name: value` sorted, then `  body ...` (none when empty). */
export function answerLines (statusLine: string, headers: Array<[string, string]>, body: Buffer): string[] {
  let text = body.toString('latin1')
  if (SIGNATURE.test(text)) text = text.replace(SIGNATURE, '<hr><center>{server}</center>\r\n</body>\r\n</html>\r\n')
  const boundary = headers.map(([n, v]) => n.toLowerCase() === 'content-type' ? BOUNDARY.exec(v)?.[1] : undefined).find((b) => b !== undefined)
  if (boundary !== undefined) text = text.replaceAll(boundary, '{boundary}')
  const shownBody = Buffer.from(text, 'latin1')
  const lengthChange = shownBody.length - body.length
  const date = Date.parse(headers.find(([n]) => n.toLowerCase() === 'date')?.[1] ?? '')
  const lines = headers
    .map(([n, v]): [string, string] => [n.toLowerCase(), v])
    .filter(([n]) => n !== 'server')
    .map(([n, v]) => {
      if (n === 'date') return `  date: *`
      if (n === 'connection') return `  connection: ${v.toLowerCase()}`
      if (n === 'content-length' && lengthChange !== 0) return `  content-length: ${Number(v) + lengthChange}`
      if (n === 'content-type' && boundary !== undefined) return `  ${n}: ${v.replace(boundary, '{boundary}')}`
      if (n === 'expires' && !Number.isNaN(date) && !Number.isNaN(Date.parse(v))) return `  expires: {date}+${(Date.parse(v) - date) / 1000}s`
      return `  ${n}: ${v}`
    })
    .sort()
  return [statusLine, ...lines, ...(shownBody.length > 0 ? [bodyLine(shownBody)] : [])]
}

/**
 * Every response in `raw` (all that came on one connection), each as `answerLines`; 100 Continue
 * heads are answers too. Bytes after the last complete response (not after a 101) are `junk`.
 */
export function wholeAnswers (raw: string, methods?: readonly string[]): string[] {
  const out: string[] = []
  let rest = raw
  for (;;) {
    const interim = /^(HTTP\/1\.\d 1(?!01)\d\d[^\r]*)\r\n((?:[^\r]+\r\n)*)\r\n/.exec(rest)
    if (interim === null) {
      const { responses, rest: after } = splitResponses(rest, { final: true, ...(methods !== undefined ? { methods } : {}) })
      for (const r of responses) {
        const [line = '', ...headerLines] = r.head.split('\r\n')
        out.push(...answerLines(line, headerPairs(headerLines), r.status === 101 ? Buffer.alloc(0) : Buffer.from(r.body, 'latin1')))
      }
      if (after.length > 0 && responses.at(-1)?.status !== 101) out.push(`junk ${JSON.stringify(after.slice(0, 80))}`)
      return out
    }
    out.push(...answerLines(interim[1] as string, headerPairs((interim[2] as string).split('\r\n').filter(Boolean)), Buffer.alloc(0)))
    rest = rest.slice(interim[0].length)
  }
}

function headerPairs (lines: string[]): Array<[string, string]> {
  return lines.map((h) => { const c = h.indexOf(':'); return [h.slice(0, c), h.slice(c + 1).trim()] })
}

/**
 * An error page answer as nginx sends it: its page as text/html, `Connection: close` and Date;
 * `headers` replace or add (a null value removes one).
 */
export function pageAnswer (status: number, headers: Record<string, string | null> = {}): string[] {
  const body = errorPageBody(status)
  const reason = status === 494 ? 'Bad Request' : /<title>\d{3} ([^<]*)<\/title>/.exec(body.toString())?.[1] ?? ''
  const all: Record<string, string | null> = { 'content-type': 'text/html', 'content-length': String(body.length), date: '', connection: 'close', ...headers }
  const pairs = Object.entries(all).filter((e): e is [string, string] => e[1] !== null)
  return answerLines(`HTTP/1.1 ${status === 494 ? 400 : status} ${reason}`, pairs, body)
}

/** A request an upstream received, as lines: the request line, `  name: value` sorted, `  body ...`. */
export function requestLines (line: string, headers: Array<[string, string]>, body: Buffer): string[] {
  const shown = headers.map(([n, v]) => `  ${n.toLowerCase()}: ${v}`).sort()
  return [`upstream ${line}`, ...shown, ...(body.length > 0 ? [bodyLine(body)] : [])]
}

/** `requestLines` of a node:http request and the body read from it. */
export function nodeRequestLines (req: http.IncomingMessage, body: Buffer): string[] {
  const pairs: Array<[string, string]> = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string])
  return requestLines(`${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}`, pairs, body)
}

/** What one exchange came to, whole: every answer (`wholeAnswers`) and whether the connection closed. */
export interface WholeExchange { answers: string[], closed: 'closed' | 'open' }

/**
 * Writes `bytes` on a fresh connection to `to` and reads until the server closes (or, when
 * `idleMs` is given, goes quiet that long; `ms` bounds it all): every answer whole and the close.
 * `methods`: each request's method in order (a HEAD answer has no body).
 */
export async function wholeExchange (to: Target, bytes: string | Buffer, opts: { methods?: readonly string[], idleMs?: number, ms?: number, onWritten?: () => void } = {}): Promise<WholeExchange> {
  const got = await send(to, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, { ms: opts.ms ?? 5000, ...(opts.idleMs !== undefined ? { idleMs: opts.idleMs } : {}), ...(opts.onWritten !== undefined ? { onWritten: opts.onWritten } : {}) })
  return { answers: wholeAnswers(got.raw, opts.methods), closed: got.closed ? 'closed' : 'open' }
}

/**
 * A node:http handler that reads each request's body, records the request whole
 * (`nodeRequestLines`) in `seen`, then lets `answer` reply (with the body read).
 */
export function recording (seen: string[][], answer: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      seen.push(nodeRequestLines(req, body))
      answer(req, res, body)
    })
  }
}
