// The bundled example: answers on 127.0.0.1:8080 and [::1]:8080 (http) and on 127.0.0.1:8443 and
// [::1]:8443 (https, HTTP/2 and HTTP/1.1) with no upstream needed. The certificate is a
// self-signed one for localhost, made on first use and kept in ~/.cache/proxyctl.
// Run it with `pnpm example`, then: curl http://127.0.0.1:8080/ and curl -k https://localhost:8443/
import { defineConfig, respond, selfSignedCertificate } from 'proxyctl'

const https = await selfSignedCertificate()

export default defineConfig({
  servers: [
    {
      listen: [
        '127.0.0.1:8080', '[::1]:8080',
        { address: '127.0.0.1:8443', https, http2: true }, { address: '[::1]:8443', https, http2: true }
      ],
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
