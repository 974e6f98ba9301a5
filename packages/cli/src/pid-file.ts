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
  #off = false
  /** Why the default pid file could not be written (logged once the proxy serves); undefined: written. */
  problem: string | undefined

  /** `required`: the path was asked for (--pid-file), so failing to write it stops the start; the default's failure is a warning. */
  constructor (readonly path: string, private readonly required: boolean) {}

  write (status: ProcessStatus): void {
    this.#attempt(() => {
      writeAtomically(statusFileOf(this.path), `${JSON.stringify(status)}\n`)
      writeAtomically(this.path, `${status.pid}\n`)
    })
  }

  status (status: ProcessStatus): void {
    this.#attempt(() => { writeAtomically(statusFileOf(this.path), `${JSON.stringify(status)}\n`) })
  }

  // A config folder may be read-only (a deployment's, or one only root writes): proxyctl serves
  // anyway, as it did before pid files, and says once that `proxyctl reload` cannot find it.
  #attempt (write: () => void): void {
    if (this.#off) return
    try {
      write()
    } catch (err) {
      if (this.required) throw err
      this.#off = true
      this.problem = `pid file ${this.path} not written (${(err as NodeJS.ErrnoException).code ?? String(err)}): \`proxyctl reload\` cannot find this process; start with --pid-file FILE in a writable folder, or send SIGHUP to process ${process.pid}`
    }
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
