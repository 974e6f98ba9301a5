// The live status page: polls /status.json and draws rates from the difference between two polls.
'use strict'
const POLL_MS = 500
let previous

function rate (now, before, pick, seconds) {
  if (before === undefined || seconds <= 0) return 0
  return Math.max(0, (pick(now) - pick(before)) / seconds)
}
const sum = (o, keys) => keys.reduce((n, k) => n + (o[k] || 0), 0)
const ALL = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other']
const fmtRate = (r) => r === 0 ? '0' : r < 10 ? r.toFixed(2) : r.toFixed(0)
const fmtMs = (s) => s === undefined ? '–' : (s * 1000).toFixed(1) + ' ms'

function avgBetween (now, before) {
  const dc = now.count - (before ? before.count : 0)
  if (dc > 0) return (now.sum - (before ? before.sum : 0)) / dc
  return now.count > 0 ? now.sum / now.count : undefined
}

function cell (text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  return td
}
function row (cells) {
  const tr = document.createElement('tr')
  for (const c of cells) tr.appendChild(c)
  return tr
}

function draw (doc) {
  const before = previous
  const seconds = before ? (doc.time - before.time) / 1000 : 0
  const ups = document.querySelector('#upstreams tbody')
  ups.replaceChildren()
  for (const u of doc.upstreams) {
    const bu = before && before.upstreams.find((x) => x.name === u.name)
    for (const p of u.servers) {
      const bp = bu && bu.servers.find((x) => x.server === p.server)
      const state = document.createElement('span')
      const inUse = p.backup && u.backupInUse && p.state === 'up'
      state.className = 'badge state-' + (inUse ? 'backup' : p.state)
      state.textContent = p.state + (p.backup ? (inUse ? ' (backup in use)' : ' (backup)') : '')
      const stateCell = cell('')
      stateCell.appendChild(state)
      const tr = row([cell(u.name), cell(p.server), stateCell,
        cell(fmtRate(rate(p, bp, (x) => sum(x.tries, ALL), seconds)), 'num'),
        cell(fmtRate(rate(p, bp, (x) => sum(x.tries, ['5xx']), seconds)), 'num'),
        cell(fmtMs(avgBetween(p.responseTime, bp && bp.responseTime)), 'num'),
        cell(p.active + ' / ' + p.idle, 'num')])
      tr.dataset.upstream = u.name
      tr.dataset.server = p.server
      tr.dataset.state = p.state
      ups.appendChild(tr)
    }
  }
  const srv = document.querySelector('#servers tbody')
  srv.replaceChildren()
  for (const s of doc.servers) {
    const bs = before && before.servers.find((x) => x.name === s.name)
    const all = row([cell(s.name), cell('(all)'),
      cell(fmtRate(rate(s, bs, (x) => sum(x.requests, ALL), seconds)), 'num'),
      cell(fmtRate(rate(s, bs, (x) => sum(x.requests, ['4xx']), seconds)), 'num'),
      cell(fmtRate(rate(s, bs, (x) => sum(x.requests, ['5xx']), seconds)), 'num'),
      cell(fmtMs(avgBetween(s.duration, bs && bs.duration)), 'num'),
      cell(String(s.locations.reduce((n, l) => n + l.tunnels, 0)), 'num')])
    all.dataset.server = s.name
    srv.appendChild(all)
    for (const l of s.locations) {
      // Locations that never answered (nginx's implicit "= /api" redirects, unused ones) would only add rows of zeros.
      if (sum(l.requests, ALL) === 0 && l.tunnels === 0) continue
      const bl = bs && bs.locations.find((x) => x.location === l.location)
      const tr = row([cell(''), cell(l.location === '' ? '(no location)' : l.location),
        cell(fmtRate(rate(l, bl, (x) => sum(x.requests, ALL), seconds)), 'num'),
        cell(fmtRate(rate(l, bl, (x) => sum(x.requests, ['4xx']), seconds)), 'num'),
        cell(fmtRate(rate(l, bl, (x) => sum(x.requests, ['5xx']), seconds)), 'num'),
        cell(fmtMs(avgBetween(l.duration, bl && bl.duration)), 'num'), cell(String(l.tunnels), 'num')])
      tr.dataset.location = l.location
      srv.appendChild(tr)
    }
  }
  const c = doc.connections
  // Series exist from startup (0); only the limits that refused something are news.
  const limits = Object.entries(doc.limitRejections).filter(([, v]) => v > 0).map(([k, v]) => k + ' ' + v).join(', ') || 'none'
  document.getElementById('connections').textContent =
    'client connections: reading ' + (c.reading || 0) + ', writing ' + (c.writing || 0) + ', waiting ' + (c.waiting || 0) +
    ' · bytes received ' + doc.bytes.received + ', sent ' + doc.bytes.sent + ' · limit rejections: ' + limits
  document.getElementById('summary').textContent = 'config generation ' + doc.generation + ' · ' + new Date(doc.time).toLocaleTimeString()
  previous = doc
}

async function poll () {
  const live = document.getElementById('live')
  try {
    const res = await fetch('status.json', { cache: 'no-store' })
    draw(await res.json())
    live.textContent = 'live'
    live.className = 'badge ok'
  } catch (err) {
    live.textContent = 'not answering'
    live.className = 'badge stale'
  }
  setTimeout(poll, POLL_MS)
}
poll()
