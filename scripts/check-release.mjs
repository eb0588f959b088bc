// The check `pnpm release` runs before `changeset publish`: every package that would be published
// (packages/* and apps/* without "private": true) names its repository, so npm can link the package page
// to its source and resolve the README's repository-relative links. Exits 1 with one line per problem.
//
//   node scripts/check-release.mjs [ROOT]
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Directories (relative to root, with '/') of the packages `changeset publish` would publish. */
export function publishedPackages(root) {
  return ['packages', 'apps']
    .flatMap((folder) => {
      const dir = join(root, folder)
      if (!existsSync(dir)) return []
      return readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'package.json')))
        .map((e) => `${folder}/${e.name}`)
        .filter((rel) => JSON.parse(readFileSync(join(root, rel, 'package.json'), 'utf8')).private !== true)
    })
    .sort()
}

/** What would make a published package's metadata wrong on npm, one message per problem (none: ready). */
export function releaseProblems(root) {
  if (!existsSync(join(root, 'package.json')))
    return [
      `${root}: no package.json, so this is not the workspace root; run it from the repository root or pass the root: node scripts/check-release.mjs ROOT`,
    ]
  if (publishedPackages(root).length === 0)
    return [
      `${root}: no package to publish (none under packages/ or apps/ without "private": true); pass the workspace root: node scripts/check-release.mjs ROOT`,
    ]
  const problems = []
  for (const rel of publishedPackages(root)) {
    const pkg = JSON.parse(readFileSync(join(root, rel, 'package.json'), 'utf8'))
    const repo = typeof pkg.repository === 'string' ? { url: pkg.repository } : pkg.repository
    const fix = `set "repository": { "type": "git", "url": "git+https://<host>/<owner>/<repo>.git", "directory": "${rel}" } in ${rel}/package.json`
    if (!repo?.url) problems.push(`${pkg.name} (${rel}): no "repository" field, so npm cannot link its page to the source; ${fix}`)
    else if (repo.directory !== undefined && repo.directory !== rel)
      problems.push(`${pkg.name} (${rel}): "repository.directory" is "${repo.directory}", but the package lives in ${rel}; ${fix}`)
    if (!pkg.license) problems.push(`${pkg.name} (${rel}): no "license" field; set "license": "MIT" (the root LICENSE)`)
  }
  return problems
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)))
  const problems = releaseProblems(root)
  if (problems.length) {
    process.stderr.write(
      `release: not publishing, ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}\n`,
    )
    process.exit(1)
  }
  process.stdout.write(`release: ${publishedPackages(root).length} packages ready to publish\n`)
}
