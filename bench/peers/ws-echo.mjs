// The WebSocket upstream: an echo server (ws). Pinned with the load, not the proxy.
//
// env: PORT
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.env.PORT), perMessageDeflate: false })
wss.on('connection', (ws) => { ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })) })
const stop = () => { for (const c of wss.clients) c.terminate(); wss.close(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
