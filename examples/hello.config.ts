// The bundled example: answers on 127.0.0.1:8080 and [::1]:8080 with no upstream needed.
// Run it with `pnpm example`, then: curl http://127.0.0.1:8080/
import { defineConfig, respond } from 'proxyctl'

export default defineConfig({
  servers: [
    {
      listen: ['127.0.0.1:8080', '[::1]:8080'],
      serverName: ['localhost'],
      locations: {
        '= /health': respond(200, 'ok\n'),
        '/': respond(200, 'hello from proxyctl: $request_method $uri (server "$server_name", location "/")\n'),
        '^~ /static/': respond(200, 'static prefix: $uri\n'),
        '~* \\.(png|jpe?g)$': respond(200, 'an image: $uri\n'),
        '~ ^/old/(?<rest>.*)$': respond(301, '/new/$rest'),
        '@fallback': respond(503)
      }
    }
  ]
})
