// Hostile clients for the bench's front-door scenario. Prints one JSON line per step.
//
//   node front-door.mjs slowloris HOST PORT COUNT
//     COUNT connections each send a request line, then one header line a second, never ending
//     the head. Prints {opened, openMs} once all are open, then {closed, longestMs} once the server
//     has closed them all (longestMs: the longest any one stayed open), or after 120 s.
//   node front-door.mjs pipeline HOST PORT COUNT PATH
//     One connection, COUNT GETs of PATH in one write. Prints {answers, ms} once all are answered
//     (or after 60 s).
//
// Needs a file-descriptor limit above COUNT: run.mjs starts it under `ulimit -n`.
import net from 'node:net'

const [mode, host, portArg, countArg, path = '/tcp/small'] = process.argv.slice(2)
const port = Number(portArg)
const count = Number(countArg)
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n')

if (mode === 'slowloris') {
  let open = 0
  let closed = 0
  let longest = 0
  const lifetimes = []
  let opened = 0
  const t0 = Date.now()
  const tick = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write(`X-Drip-${s.lines++}: 1\r\n`) }, 1000)
  const sockets = new Set()
  const openOne = () => new Promise((resolve) => {
    const s = net.connect({ host, port })
    s.lines = 0
    let start = 0
    s.on('connect', () => { start = Date.now(); open++; opened++; s.write('GET /tcp/small HTTP/1.1\r\nHost: localhost\r\n'); resolve() })
    s.on('error', () => {})
    s.on('data', () => {})
    s.on('close', () => {
      sockets.delete(s)
      if (start === 0) { resolve(); return }
      closed++
      lifetimes.push(Date.now() - start)
      longest = Math.max(longest, Date.now() - start)
    })
    sockets.add(s)
  })
  for (let i = 0; i < count; i += 200) await Promise.all(Array.from({ length: Math.min(200, count - i) }, openOne))
  say({ opened, openMs: Date.now() - t0 })
  const deadline = Date.now() + 120_000
  while (closed < opened && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  clearInterval(tick)
  lifetimes.sort((a, b) => a - b)
  const at = (q) => lifetimes[Math.min(lifetimes.length - 1, Math.floor(q * lifetimes.length))] ?? 0
  say({ closed, stillOpen: opened - closed, longestMs: longest, p50Ms: at(0.5), p99Ms: at(0.99) })
  for (const s of sockets) s.destroy()
  process.exit(0)
} else if (mode === 'pipeline') {
  const s = net.connect({ host, port })
  const t0 = Date.now()
  let text = ''
  let answers = 0
  s.setEncoding('latin1')
  s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`.repeat(count)))
  s.on('error', () => {})
  const done = () => { say({ answers, ms: Date.now() - t0 }); s.destroy(); process.exit(0) }
  s.on('data', (d) => {
    text += d
    // Count status lines as they come; keep only a tail in case one is split.
    const n = text.split('HTTP/1.1 200').length - 1
    answers += n
    text = text.slice(Math.max(text.lastIndexOf('HTTP/1.1 200') + 12, text.length - 12))
    if (answers >= count) done()
  })
  s.on('close', done)
  setTimeout(done, 60_000)
} else {
  process.stderr.write('usage: front-door.mjs slowloris|pipeline HOST PORT COUNT [PATH]\n')
  process.exit(2)
}
