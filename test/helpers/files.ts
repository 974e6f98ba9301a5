import fs from 'node:fs'
import path from 'node:path'

/** Writes `files` (relative name → content) under `root`, each with `mtime`, so ETag and Last-Modified are known. */
export function writeTree (root: string, files: Record<string, string>, mtime: Date): void {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(root, name)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content)
    fs.utimesSync(file, mtime, mtime)
  }
}
