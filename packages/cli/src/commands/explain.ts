import { ExplainInputError, type ResolvedConfig } from '@proxyctl/core'
import { explainRequest, type Explanation, type ExplainInput } from '@proxyctl/core/internal'
import { loadConfig } from '../load.js'
import { configPath, reportFailure } from '../report.js'

export interface ExplainOptions {
  config?: string | undefined
  headers?: string[] | undefined
  json?: boolean | undefined
  listen?: string | undefined
  client?: string | undefined
}

/**
 * `proxyctl explain [METHOD] URL`: which listen address, server and location a request reaches
 * and what its handler would do, without listening or connecting. Exit 0; 1 for a config that
 * does not load (as `check`); 2 for a request it cannot describe.
 */
export async function explain (args: string[], options: ExplainOptions): Promise<number> {
  let input: ExplainInput
  try {
    input = explainInput(args, options)
  } catch (err) {
    process.stderr.write(`proxyctl: explain: ${(err as Error).message}\n`)
    return 2
  }
  let config: ResolvedConfig
  try {
    config = await loadConfig(configPath(options.config))
  } catch (err) {
    return reportFailure(err)
  }
  let out: Explanation
  try {
    out = await explainRequest(config, input)
  } catch (err) {
    if (!(err instanceof ExplainInputError)) return reportFailure(err)
    process.stderr.write(`proxyctl: explain: ${err.message}\n`)
    return 2
  }
  process.stdout.write(options.json === true ? `${JSON.stringify(out, null, 2)}\n` : formatExplanation(out))
  return 0
}

/** `[METHOD] URL` and `-H 'Name: value'`, checked. */
export function explainInput (args: string[], options: ExplainOptions): ExplainInput {
  if (args.length === 0 || args.length > 2) throw new ExplainInputError('usage: proxyctl explain [-c FILE] [METHOD] URL [-H \'Name: value\']... [--json]')
  const [method, url] = args.length === 2 ? [args[0] as string, args[1] as string] : ['GET', args[0] as string]
  const headers: Array<[string, string]> = []
  for (const h of options.headers ?? []) {
    const colon = h.indexOf(':')
    if (colon <= 0) throw new ExplainInputError(`invalid header "${h}": expected 'Name: value'`)
    headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()])
  }
  return {
    method, url, headers,
    ...(options.listen !== undefined ? { listen: options.listen } : {}),
    ...(options.client !== undefined ? { client: options.client } : {})
  }
}

const RULES: Record<string, string> = {
  exact: 'exact name',
  'leading-wildcard': 'longest leading wildcard',
  'trailing-wildcard': 'longest trailing wildcard',
  regex: 'first matching regex',
  default: 'no name matches: the default server of the address'
}

/** The text `proxyctl explain` prints. */
export function formatExplanation (x: Explanation): string {
  const lines: string[] = []
  const q = JSON.stringify
  lines.push(`request   ${x.request.method} ${x.request.target} (client ${x.request.client})`)
  for (const [n, v] of x.request.headers) lines.push(`          ${n}: ${v}`)
  lines.push(`listen    ${x.listen.address}: ${x.listen.why}`)
  const names = x.server.names.length === 0 ? '""' : x.server.names.map((n) => q(n)).join(' ')
  const rule = RULES[x.server.rule] ?? x.server.rule
  lines.push(`server    ${x.server.keyPath} ${names}: host ${q(x.server.host)}, ${rule}${x.server.name !== null && x.server.rule !== 'default' ? ` ${q(x.server.name)}` : ''}`)

  if (x.steps.length > 0) lines.push('routing')
  lines.push(...stepsLines(x.steps))
  if (x.location !== null) lines.push(`location  ${x.location.chain.join(' > ')} (${x.location.keyPath})`)
  else if (x.outcome === 'fallback') lines.push('location  none matches: the server\'s handler answers')
  if (x.answer !== null) lines.push(`answer    ${x.answer.status}${x.answer.location !== undefined ? ` Location: ${x.answer.location}` : ''}${x.answer.reason !== undefined ? ` (${x.answer.reason})` : ''} [${x.outcome}]`)
  // Captures ($1..) after the named variables (an object lists integer keys first).
  const vars = Object.entries(x.variables).sort(([a], [b]) => Number(/^\d+$/.test(a)) - Number(/^\d+$/.test(b)))
  if (vars.length > 0) {
    lines.push('variables')
    for (const [n, v] of vars) lines.push(`  $${n.padEnd(12)} ${q(v)}`)
  }
  if (x.outcome !== 'bad-request') {
    lines.push(`plugins   ${x.plugins.length === 0 ? '(none)' : x.plugins.map((p) => `${p.name} (${p.scope})`).join(', ')}`)
  }
  if (x.handler !== null) {
    lines.push(`handler   ${x.handler.description} (${x.handler.keyPath})`)
    lines.push(...handlerLines(x.handler))
  }
  for (const hop of x.redirects) {
    lines.push(`internal redirect to ${q(hop.to)}`)
    lines.push(...stepsLines(hop.steps))
    if (hop.location !== null) lines.push(`location  ${hop.location.chain.join(' > ')} (${hop.location.keyPath})`)
    if (hop.answer !== null) lines.push(`answer    ${hop.answer.status}${hop.answer.reason !== undefined ? ` (${hop.answer.reason})` : ''} [${hop.outcome}]`)
    lines.push(`plugins   ${hop.plugins.length === 0 ? '(none)' : hop.plugins.map((p) => `${p.name} (${p.scope})`).join(', ')}`)
    if (hop.handler !== null) {
      lines.push(`handler   ${hop.handler.description} (${hop.handler.keyPath})`)
      lines.push(...handlerLines(hop.handler))
    }
  }
  return lines.join('\n') + '\n'
}

function stepsLines (steps: Explanation['steps']): string[] {
  return steps.flatMap((s, i) => s.step === 'select' && steps[i + 1]?.step !== 'location' ? [...stepLines(s), '    (no location matches)'] : stepLines(s))
}

function stepLines (s: Explanation['steps'][number]): string[] {
  const q = JSON.stringify
  switch (s.step) {
    case 'select': return [`  locations for ${q(s.uri)}, in nginx's order:`]
    case 'rewrite':
      return [`  rewrite ${q(s.rule)} (${s.keyPath}): ${s.matched ? `matches: $uri ${q(s.uri)}${s.args !== '' ? `, $args ${q(s.args)}` : ''}` : 'no match'}`]
    case 'location': {
      const what = s.test === 'exact'
        ? 'exact match: chosen, the search stops'
        : s.test === 'prefix'
          ? 'longest prefix: remembered (its nested locations searched first)'
          : s.test === 'regexes-skipped' ? '"^~": the regexes of this level are not tried' : s.matched ? 'regex matches: chosen' : 'regex, no match'
      return [`    ${s.location.padEnd(30)} ${what}`]
    }
  }
}

function handlerLines (h: NonNullable<Explanation['handler']>): string[] {
  const out: string[] = []
  const q = JSON.stringify
  const f = h as Record<string, unknown>
  switch (h.kind) {
    case 'respond': {
      out.push(`  status   ${String(f.status)}`)
      if (f.location !== undefined) out.push(`  Location ${String(f.location)}`)
      for (const [n, v] of (f.headers as Array<[string, string]> | undefined) ?? []) out.push(`  header   ${n}: ${v}`)
      if (f.errorPage !== undefined) out.push(`  through errorPages: ${String(f.errorPage)}`)
      if (f.body !== undefined) out.push(`  body     ${q(f.body)}`)
      break
    }
    case 'proxy':
    case 'websocket': {
      if (f.error !== undefined) { out.push(`  ${String(f.error)}`); break }
      if (f.rendered !== undefined) out.push(`  target   ${q(f.rendered)} (rendered)`)
      const servers = (f.servers as Array<Record<string, unknown>>).map((s) => {
        const extra = Object.entries(s).filter(([k]) => k !== 'address').map(([k, v]) => v === true ? k : `${k}=${String(v)}`)
        return [String(s.address), ...extra].join(' ')
      })
      out.push(`  upstream ${String(f.upstream)} (${String(f.balancer)}${f.hashKey !== undefined ? `, key ${q(f.hashKey)}` : ''}): ${servers.join(', ')}`)
      out.push(`  first pick ${f.firstPick === null ? `unknown: ${String(f.firstPickNote)}` : `${String(f.firstPick)} (in a process just started)`}`)
      out.push(`  URI      ${String(f.uriRule)}`)
      out.push('  upstream request:')
      for (const l of f.upstreamRequest as string[]) out.push(`    ${l}`)
      if (f.tunnel !== undefined) out.push(`  ${String(f.tunnel)}`)
      break
    }
    case 'static':
      out.push(...staticLines(f))
      break
    case 'try_files': {
      out.push(`  base     ${String(f.base)}`)
      for (const c of f.checked as Array<Record<string, unknown>>) {
        out.push(`  try ${String(c.arg)} → ${q(c.uri)}: ${c.path === null ? 'outside the root, skipped' : `${String(c.path)} (${c.want === 'directory' ? 'a folder' : 'a file'} wanted): ${String(c.found)}`}`)
      }
      if (f.found === null) {
        out.push(`  none found: ${f.status !== undefined ? `answer ${String(f.status)}` : `internal redirect to ${q(f.internalRedirect)}`}`)
      } else {
        out.push(`  served here with $uri ${q(f.found)}`)
        out.push(...staticLines(f.static as Record<string, unknown>))
      }
      break
    }
  }
  return out
}

function staticLines (f: Record<string, unknown>): string[] {
  const out: string[] = []
  for (const c of (f.checked as Array<{ path: string, found: string }>)) out.push(`  file     ${c.path}: ${c.found}`)
  const a = f.answer as { kind: string, status?: number, uri?: string, location?: string, file?: string }
  out.push(`  answer   ${a.kind === 'file' ? `200, the file ${a.file ?? ''}` : a.kind === 'index' ? `internal redirect to ${JSON.stringify(a.uri)}` : a.kind === 'redirect' ? `301 to ${a.location ?? ''}` : String(a.status)}`)
  return out
}
