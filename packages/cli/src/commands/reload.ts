import { loadConfig } from '../load.js'
import { configPath, reportFailure } from '../report.js'
import { defaultPidFile, readPid, readStatus } from '../pid-file.js'

/** How long `proxyctl reload` waits for the running process to answer: loading a config and building its app. */
const ANSWER_TIMEOUT_MS = 120_000

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * `proxyctl reload`: validates the config as `start` would load it (errors printed, exit 1, no
 * signal sent), then sends SIGHUP to the process the pid file names and waits until it reports
 * that the new config serves (exit 0) or why it kept the old one (exit 1, its errors).
 */
export async function reload (configOption: string | undefined, pidFileOption: string | undefined): Promise<number> {
  let file: string
  try {
    file = configPath(configOption)
    await loadConfig(file)
  } catch (err) {
    return reportFailure(err)
  }
  const pidFile = pidFileOption ?? defaultPidFile(file)
  const pid = readPid(pidFile)
  if (pid === undefined || !alive(pid)) {
    process.stderr.write(`proxyctl: ${pidFile}: no running proxyctl (${pid === undefined ? 'no pid file' : `process ${pid} is gone`}); start one with \`proxyctl start\`\n`)
    return 1
  }
  const before = readStatus(pidFile)?.reloads ?? 0
  process.kill(pid, 'SIGHUP')
  const deadline = Date.now() + ANSWER_TIMEOUT_MS
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const status = readStatus(pidFile)
    if (status !== undefined && status.pid === pid && status.reloads > before) {
      if (status.last?.ok === true) {
        process.stdout.write(`proxyctl: reloaded ${file}: generation ${status.generation} serves (pid ${pid})\n`)
        return 0
      }
      for (const e of status.last?.errors ?? ['the reload failed']) process.stderr.write(`proxyctl: ${e}\n`)
      process.stderr.write(`proxyctl: reload failed; the config before keeps serving (pid ${pid})\n`)
      return 1
    }
    if (!alive(pid)) {
      process.stderr.write(`proxyctl: process ${pid} exited during the reload\n`)
      return 1
    }
  }
  process.stderr.write(`proxyctl: process ${pid} did not answer the reload within ${ANSWER_TIMEOUT_MS / 1000} s\n`)
  return 1
}
