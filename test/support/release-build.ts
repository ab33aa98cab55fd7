// A tagged release of hearth built from this repository's history, so rolling-upgrade tests run
// a real earlier build beside the current tree (docs/upgrades.md, "Releases"). The tag's tree is
// exported with `git archive` into a directory of its own and compiled with its own tsconfig.
// Its npm packages are the current tree's when both lock files are the same (linked, no
// install), and installed with `npm ci` otherwise. A build is reused by later tests of the same
// run (and of later runs on the machine) from a directory named by the tag's commit.
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

/** The first release: messages 1, record schema 1 (src/protocol.ts as tagged). */
export const FIRST_RELEASE = 'v0.1.0';

/**
 * The commit each release tag names, for a clone made without its tags (`git clone --no-tags`,
 * or a CI checkout of one branch): the history holds the commit even when the tag is absent.
 */
const RELEASE_COMMITS: Readonly<Record<string, string>> = { 'v0.1.0': '4d7c6fcb4d54193925020b4f25e7915b9be91650' };

/** A built release: run its `bin/hearth.js` with `startHearth({ root })`. */
export interface ReleaseBuild {
  readonly tag: string;
  readonly commit: string;
  readonly root: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The commit a release tag names. Fails loudly, never skips: a clone without tags (or a shallow
 * one) cannot run the mixed-release tests.
 */
export async function releaseCommit(tag: string): Promise<string> {
  const candidates = [tag, ...(RELEASE_COMMITS[tag] === undefined ? [] : [RELEASE_COMMITS[tag]])];
  let err: unknown;
  for (const name of candidates) {
    try {
      const { stdout } = await run('git', ['-C', REPO, 'rev-parse', '--verify', '--quiet', `${name}^{commit}`]);
      return stdout.trim();
    } catch (e) {
      err = e;
    }
  }
  throw new Error(
    `release tag ${tag} is not in this clone, nor its commit ${RELEASE_COMMITS[tag] ?? '(unknown)'} (${(err as Error).message.split('\n')[0]}): the rolling-upgrade tests run a build of it beside the current tree; fetch the tags (git fetch --tags) or clone without --depth`,
    { cause: err },
  );
}

/** Exports, installs and compiles the release `tag` (once per commit and machine). */
export async function buildRelease(tag: string = FIRST_RELEASE): Promise<ReleaseBuild> {
  const commit = await releaseCommit(tag);
  const root = join(tmpdir(), `hearth-release-${tag}-${commit.slice(0, 12)}`);
  if (await exists(join(root, '.built'))) return { tag, commit, root };
  const staging = `${root}.${process.pid}.${Date.now()}`;
  await mkdir(staging, { recursive: true });
  try {
    const archive = join(staging, '.source.tar');
    await run('git', ['-C', REPO, 'archive', '--format=tar', '-o', archive, commit]);
    await run('tar', ['-xf', archive, '-C', staging]);
    await rm(archive);
    const sameLock = (await readFile(join(REPO, 'package-lock.json'), 'utf8')) === (await readFile(join(staging, 'package-lock.json'), 'utf8'));
    if (sameLock) await symlink(join(REPO, 'node_modules'), join(staging, 'node_modules'), 'dir');
    else await run('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: staging, maxBuffer: 64 * 1024 * 1024 });
    await run(process.execPath, [join(staging, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: staging, maxBuffer: 64 * 1024 * 1024 });
    await writeFile(join(staging, 'dist/build-info.json'), `${JSON.stringify({ revision: commit.slice(0, 7), tag })}\n`);
    await writeFile(join(staging, '.built'), `${tag} ${commit}\n`);
    try {
      await rename(staging, root);
    } catch (err) {
      // Another run built it meanwhile: use theirs.
      if (!(await exists(join(root, '.built')))) throw err;
      await rm(staging, { recursive: true, force: true });
    }
    return { tag, commit, root };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw new Error(`building release ${tag} (${commit.slice(0, 12)}) failed: ${(err as Error).message}`, { cause: err });
  }
}
