import { defineConfig, serveStatic } from 'proxyctl'
export default defineConfig({
  logLevel: 'warn',
  servers: [{ listen: process.env.LISTEN ?? '127.0.0.1:28080', root: new URL('./www', import.meta.url).pathname, locations: { '/': serveStatic() } }]
})
