// The article's second example: static files first, else a Rails app server over a unix socket.
//
//   upstream rails365 {
//     server unix:///home/yinsigan/rails365/shared/tmp/sockets/unicorn.sock fail_timeout=0;
//   }
//   server {
//     listen 80 default_server;
//     listen [::]:80 default_server ipv6only=on;
//     server_name www.rails365.net;
//     root /home/yinsigan/rails365/current/public;
//     try_files $uri/index.html $uri @rails365;
//     location @rails365 {
//       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//       proxy_set_header Host $http_host;
//       proxy_redirect off;
//       proxy_pass http://rails365;
//     }
//   }
//
// Run it with no Rails around: examples/rails365-upstream.mjs is a tiny app server on the socket.
//
//   node examples/rails365-upstream.mjs &
//   npx proxyctl start --config examples/rails365.config.ts
//   curl -i http://127.0.0.1:8080/about.html   # a file from examples/rails365/public
//   curl -i http://127.0.0.1:8080/articles/    # no such file: the app answers, through the proxy
//
// RAILS365_SOCKET and RAILS365_LISTEN (comma-separated) change the socket and the listen
// addresses (test/proxy/files-first-else-unix-socket-app.test.ts uses them); 127.0.0.1:8080 and
// [::1]:8080 stand for nginx's port 80 so no root is needed.
import { defineConfig, proxy, tryFiles } from 'proxyctl'

const socket = process.env.RAILS365_SOCKET ?? '/tmp/proxyctl-example/rails365.sock'
const listen = (process.env.RAILS365_LISTEN ?? '127.0.0.1:8080,[::1]:8080').split(',')

export default defineConfig({
  upstreams: {
    // fail_timeout=0: a failure never takes the (only) server out; the next request tries again.
    rails365: { servers: [{ address: `unix:${socket}`, failTimeout: 0 }] }
  },
  servers: [{
    listen: listen.map((address) => ({ address, defaultServer: true })),
    serverName: 'www.rails365.net',
    root: './rails365/public',
    // try_files at server level: the server's handler, for every request no location takes.
    handler: tryFiles('$uri/index.html', '$uri', '@rails365'),
    locations: {
      '@rails365': proxy('http://rails365', {
        setHeaders: {
          'X-Forwarded-For': '$proxy_add_x_forwarded_for',
          Host: '$http_host'
        },
        redirect: false
      })
    }
  }]
})
