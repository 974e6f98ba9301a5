/**
 * A real redis-server (Debian's) for a test: on a unix socket or a port on 127.0.0.1, nothing
 * saved to disk, killed by its PID when the test ends (or earlier, to play an outage).
 */
import { spawn, spawnSync } from 'node:child_process'
import { waitFor, type Teardown } from './lifecycle.js'

/** A tap `skip` value: false when redis-server is installed, else why the test cannot run. */
export const redisMissing = (): false | string => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0 ? false : 'redis-server is not installed (apt-get install redis-server)'

export interface TestRedis {
  /** What a zone's `store: { redis }` takes: `unix:/path` or `redis://127.0.0.1:PORT`. */
  readonly url: string
  /** Runs redis-cli against it; its output, trimmed ('' when it does not answer). */
  cli (...args: string[]): string
  /** SIGKILL, as a crash would. */
  kill (): void
}

/** Starts redis-server on `{ socket }` or `{ port }` and resolves once it answers PING (rejects after 5 s). */
export async function startRedis (t: Teardown, listen: { socket: string } | { port: number }): Promise<TestRedis> {
  const where = 'socket' in listen ? ['--port', '0', '--unixsocket', listen.socket] : ['--port', String(listen.port), '--bind', '127.0.0.1']
  const server = spawn('redis-server', [...where, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const kill = (): void => { if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL') }
  t.teardown(kill)
  const to = 'socket' in listen ? ['-s', listen.socket] : ['-p', String(listen.port)]
  const cli = (...args: string[]): string => spawnSync('redis-cli', [...to, ...args], { encoding: 'utf8' }).stdout?.trim() ?? ''
  await waitFor(() => cli('ping') === 'PONG', 5000, 'redis-server to answer PING')
  return { url: 'socket' in listen ? `unix:${listen.socket}` : `redis://127.0.0.1:${listen.port}`, cli, kill }
}
