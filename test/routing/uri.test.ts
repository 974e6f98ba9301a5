/**
 * URI normalisation and request-target splitting. The tables live in fixtures/uri-cases.ts and
 * were checked against nginx 1.22.1's $uri and $args with fixtures/nginx-compare.ts.
 */
import t from 'tap'
import { normalizeUri, splitRequestTarget } from '../../packages/core/src/routing/uri.js'
import { BadRequestError } from '../../packages/core/src/errors.js'
import { targetCases, uriCases, uriOnlyCases } from './fixtures/uri-cases.js'

t.test('normalizeUri', async t => {
  for (const c of [...uriCases, ...uriOnlyCases]) {
    if (c.expect === 400) {
      t.throws(() => normalizeUri(c.path), BadRequestError, `400 for ${c.rule}: ${JSON.stringify(c.path)}`)
      try {
        normalizeUri(c.path)
      } catch (err) {
        t.match(err, { status: 400, code: 'PROXYCTL_BAD_REQUEST' }, `status 400 for ${JSON.stringify(c.path)}`)
      }
    } else {
      t.equal(normalizeUri(c.path), c.expect, `${c.rule}: ${JSON.stringify(c.path)}`)
    }
  }
})

t.test('normalizeUri details', async t => {
  t.equal(normalizeUri('/a/b.html'), '/a/b.html', 'fast path returns the input')
  t.equal(normalizeUri('/café'), '/café', 'non-ASCII input is taken as UTF-8 text')
  for (let b = 0x80; b <= 0xff; b++) {
    const hex = b.toString(16).toUpperCase()
    const out = normalizeUri(`/x/%C0%${hex}%E0%80%${hex}/y`)
    if (out.slice(3, -2).includes('/') || out.slice(3, -2).includes('.')) {
      t.fail(`overlong %C0%${hex} decoded to "/" or "."`)
    }
  }
  t.pass('no overlong two- or three-byte sequence decodes to "/" or "."')
})

t.test('splitRequestTarget', async t => {
  for (const c of targetCases) {
    t.strictSame(splitRequestTarget(c.target), c.expect, `${c.rule}: ${JSON.stringify(c.target)}`)
  }
  t.throws(() => normalizeUri(splitRequestTarget('*').path), BadRequestError, '"*" is rejected by normalizeUri')
})
