import fs from 'node:fs'
import path from 'node:path'

/**
 * What `proxyctl start` tells `proxyctl reload` about itself, beside the pid file: the
 * generation of the config in force and the outcome of the last reload (SIGHUP). The pid file
 * holds the process id alone, as nginx's, so `kill -HUP $(cat proxyctl.pid)` works.
 */
export interface ProcessStatus {
  readonly pid: number
  /** The generation of the config in force: 1 at start, one more per reload that serves. */
  readonly generation: number
  /** SIGHUPs handled so far (a reload waits for this to pass the count it read before signalling). */
  readonly reloads: number
  /** The last reload's outcome: its errors, one line each with file and key path. */
  readonly last?: { readonly ok: boolean, readonly errors: readonly string[] }
}

/** nginx keeps its pid file where its build says (/run/nginx.pid); proxyctl beside the config, which a second config elsewhere does not share. */
export function defaultPidFile (configFile: string): string {
  return path.join(path.dirname(configFile), 'proxyctl.pid')
}

export function statusFileOf (pidFile: string): string {
  return `${pidFile}.status`
}

/** Written whole under another name, then renamed: a reader never sees half a file. */
function writeAtomically (file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}

export class PidFile {
  constructor (readonly path: string) {}

  write (status: ProcessStatus): void {
    writeAtomically(statusFileOf(this.path), `${JSON.stringify(status)}\n`)
    writeAtomically(this.path, `${status.pid}\n`)
  }

  status (status: ProcessStatus): void {
    writeAtomically(statusFileOf(this.path), `${JSON.stringify(status)}\n`)
  }

  /** On a clean stop, unless another process wrote its own since. */
  remove (): void {
    try {
      if (fs.readFileSync(this.path, 'utf8').trim() !== String(process.pid)) return
      fs.rmSync(this.path, { force: true })
      fs.rmSync(statusFileOf(this.path), { force: true })
    } catch {}
  }
}

export function readPid (pidFile: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(pidFile, 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch { return undefined }
}

export function readStatus (pidFile: string): ProcessStatus | undefined {
  try { return JSON.parse(fs.readFileSync(statusFileOf(pidFile), 'utf8')) as ProcessStatus } catch { return undefined }
}
