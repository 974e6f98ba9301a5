// The article's third example: WebSocket to an app over a unix socket.
//
//   upstream ws {
//     server unix:///tmp/proxyctl-ws-upstream.sock fail_timeout=0;
//   }
//   server {
//     location /ws/ {
//       proxy_pass http://ws;
//       proxy_http_version 1.1;
//       proxy_set_header Upgrade $http_upgrade;
//       proxy_set_header Connection "upgrade";
//     }
//   }
//
// Run it (after `pnpm build`):
//   node examples/ws-upstream.mjs &                                   # the echo app on the socket
//   node packages/cli/dist/bin.js start -c examples/websocket.config.ts
// then open http://127.0.0.1:8080/ and watch the 101 in the network panel, or in any page's
// console: new WebSocket('ws://127.0.0.1:8080/ws/'). PROXYCTL_LISTEN and WS_UPSTREAM_SOCKET
// override the address and the socket (test/websocket/unix-socket-app.test.ts uses them).
import { defineConfig, respond, websocket } from 'proxyctl'

const socket = process.env.WS_UPSTREAM_SOCKET ?? '/tmp/proxyctl-ws-upstream.sock'
const listen = process.env.PROXYCTL_LISTEN ?? '127.0.0.1:8080'

// A page to try it from a browser. (No "$" in it: bodies are templates.)
const page = `<!doctype html>
<meta charset="utf-8">
<title>proxyctl WebSocket example</title>
<pre id="log"></pre>
<script>
  const log = (line) => { document.getElementById('log').textContent += line + '\\n' }
  const ws = new WebSocket('ws://' + location.host + '/ws/')
  ws.onopen = () => { log('open'); ws.send('hello through proxyctl') }
  ws.onmessage = (e) => log('echo: ' + e.data)
  ws.onclose = (e) => log('closed ' + e.code)
</script>
`

export default defineConfig({
  upstreams: {
    // nginx's `unix:///path` form is accepted as is; fail_timeout=0 is failTimeout: 0.
    ws: { servers: [{ address: `unix://${socket}`, failTimeout: 0 }] }
  },
  servers: [{
    listen,
    locations: {
      // Upgrade and Connection are sent upstream as nginx's config above sends them; the tunnel
      // is byte for byte after the 101. Plain requests to /ws/ are proxied like proxy('http://ws').
      '/ws/': websocket('http://ws'),
      '= /': respond({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: page })
    }
  }]
})
