// WebSocket tunnels through proxyctl: used only when packages/plugins exports `websocket`.
// websocket(TARGET): TARGET is any proxy() target; the tunnel is a byte tunnel (no message mode),
// the plugin's default.
import * as proxyctl from 'proxyctl'

const { PORT, WS_UPSTREAM } = process.env
if (PORT === undefined || WS_UPSTREAM === undefined) throw new Error('PORT and WS_UPSTREAM must be set (bench/run.mjs sets them)')
if (typeof proxyctl.websocket !== 'function') throw new Error('proxyctl does not export websocket yet')

export default proxyctl.defineConfig({
  servers: [{
    listen: [`127.0.0.1:${PORT}`],
    serverName: 'localhost',
    locations: {
      '= /health': proxyctl.respond(200, 'ok\n'),
      '/ws': proxyctl.websocket(`http://${WS_UPSTREAM}`)
    }
  }]
})
