import fs from 'node:fs'
import { builtinModules } from 'node:module'
import path from 'node:path'
import { ownVersion, TSCONFIG } from './init.js'

/** The template's code and prose (src/index.ts, test/plugin.test.ts, README.md, gitignore), shipped beside dist/. */
const TEMPLATE = new URL('../../template/plugin/', import.meta.url)

// npm's rules for a new package's name: lower case, URL-safe, at most 214 characters, an optional
// @scope/, not starting with . or _, not a Node core module.
const NAME = /^(?:@([a-z0-9~-][a-z0-9._~-]*)\/)?([a-z0-9~-][a-z0-9._~-]*)$/

/** Why `name` cannot be an npm package's name, or undefined when it can. */
export function packageNameProblem (name: string): string | undefined {
  if (name === '') return 'it is empty'
  if (name.length > 214) return 'it is longer than 214 characters'
  if (name !== name.toLowerCase()) return 'it has capital letters'
  if (/^[._]/.test(name)) return 'it starts with . or _'
  const m = NAME.exec(name)
  if (m === null) return 'npm allows lower case letters, digits and - . _ ~ only, after an optional @scope/'
  if (m[1] === undefined && (builtinModules.includes(name) || name === 'node_modules' || name === 'favicon.ico')) return 'that name is taken by Node or npm'
  return undefined
}

/** `proxyctl-plugin-foo-bar` or `@scope/foo-bar` → the identifiers the template uses: fooBarPlugin, FooBarOptions. */
function identifiers (name: string): { plugin: string, options: string } {
  const words = (name.replace(/^@[^/]+\//, '').replace(/^proxyctl-(plugin-)?/, '').match(/[a-z0-9]+/g) ?? [])
  const cap = (w: string): string => w.charAt(0).toUpperCase() + w.slice(1)
  let camel = words.map((w, i) => (i === 0 ? w : cap(w))).join('')
  if (/^[0-9]/.test(camel)) camel = `_${camel}`
  return { plugin: `${camel}Plugin`, options: `${cap(camel) || 'Plugin'}Options` }
}

/** Every file of the kit, path → text. */
function kitFiles (name: string): Array<[string, string]> {
  const range = `^${ownVersion()}`
  const { plugin, options } = identifiers(name)
  const fill = (file: string): string => fs.readFileSync(new URL(file, TEMPLATE), 'utf8')
    .replaceAll('__NAME__', name).replaceAll('__PLUGIN__', plugin).replaceAll('__OPTIONS__', options)
    .replaceAll('__PROXYCTL_RANGE__', range)
  const json = (value: object): string => JSON.stringify(value, null, 2) + '\n'
  const pkg = {
    name,
    version: '0.1.0',
    description: 'A proxyctl plugin',
    keywords: ['proxyctl', 'proxyctl-plugin', 'fastify-plugin'],
    type: 'module',
    main: './dist/index.js',
    types: './dist/index.d.ts',
    exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
    files: ['dist'],
    engines: { node: '>=20.11' },
    scripts: {
      build: 'tsc -p tsconfig.build.json',
      test: 'tsc && tap',
      prepack: 'npm run build'
    },
    dependencies: { 'fastify-plugin': '^5.1.0' },
    peerDependencies: { proxyctl: range },
    devDependencies: { '@types/node': '^20.19.0', proxyctl: range, tap: '^21.1.0', typescript: '~5.9.3' },
    tap: { 'disable-coverage': true }
  }
  return [
    ['package.json', json(pkg)],
    // What the editor and `tsc` (npm test) check: sources and tests, nothing written.
    ['tsconfig.json', json({ compilerOptions: TSCONFIG.compilerOptions, include: ['src', 'test'] })],
    // What `npm run build` writes: src/ to dist/, with declarations.
    ['tsconfig.build.json', json({ extends: './tsconfig.json', compilerOptions: { noEmit: false, rootDir: 'src', outDir: 'dist', declaration: true }, include: ['src'] })],
    // npm leaves a package's .gitignore out of its tarball, so the template's has no dot.
    ['.gitignore', fill('gitignore')],
    ['src/index.ts', fill('src/index.ts')],
    ['test/plugin.test.ts', fill('test/plugin.test.ts')],
    ['README.md', fill('README.md')]
  ]
}

/**
 * `proxyctl init --plugin NAME`: writes a publishable plugin package into the folder NAME (the
 * name without its scope), which must not exist or be empty.
 */
export function initPlugin (name: string): number {
  const problem = packageNameProblem(name)
  if (problem !== undefined) {
    process.stderr.write(`proxyctl: "${name}" is not a valid npm package name: ${problem}\n`)
    return 1
  }
  const dir = path.resolve(name.replace(/^@[^/]+\//, ''))
  if (fs.existsSync(dir) && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0)) {
    process.stderr.write(`proxyctl: ${dir} already exists and is not an empty folder\n`)
    return 1
  }
  for (const [file, text] of kitFiles(name)) {
    const target = path.join(dir, file)
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, text)
    process.stdout.write(`wrote ${target}\n`)
  }
  process.stdout.write(`next: cd ${path.relative(process.cwd(), dir)} && npm install && npm test\n`)
  return 0
}
