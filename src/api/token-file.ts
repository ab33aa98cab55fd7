import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { MIN_TOKEN_LENGTH, parseApiToken } from '../config/secret-file.js';
import { ConfigError, messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export { MIN_TOKEN_LENGTH };

/** How long a token read from its file is trusted before the file is looked at again. */
export const TOKEN_RECHECK_MS = 5_000;

/** The SHA-256 digest of a token; equal-length digests let `timingSafeEqual` compare tokens. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Options of {@link TokenFile}. */
export interface TokenFileOptions {
  /** The option naming the file, for error messages (`api.tokenFile`). */
  readonly option: string;
  /** Its environment name (`HEARTH_API_TOKEN_FILE`). */
  readonly env: string;
  readonly logger: Logger;
  /** @default {@link TOKEN_RECHECK_MS} */
  readonly recheckMs?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now?: () => number;
}

/**
 * A token kept in a file, as Kubernetes mounts a Secret. Only the token's SHA-256 digest is
 * kept in memory. The file is looked at again at most every `recheckMs` (on the next request),
 * so a rotated Secret takes effect without a restart; Kubernetes swaps a symlink rather than
 * rewriting the file, so a change is seen through `stat`, not file watching.
 *
 * Failure semantics: {@link load} throws {@link ConfigError} when the file is missing,
 * unreadable or holds no acceptable token, so the daemon refuses to start. Later, a file that
 * turns bad keeps the last good token and logs a warning, so a half-written rotation cannot
 * lock every operator out.
 */
export class TokenFile {
  private current: Buffer | undefined;
  private fingerprint = '';
  private checkedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;
  private readonly recheckMs: number;
  private readonly now: () => number;

  constructor(
    readonly path: string,
    private readonly options: TokenFileOptions,
  ) {
    this.recheckMs = options.recheckMs ?? TOKEN_RECHECK_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Reads the token for the first time.
   *
   * @throws ConfigError when there is no usable token in the file.
   */
  async load(): Promise<void> {
    const read = await this.read();
    if (!read.ok) {
      throw new ConfigError([{ path: this.options.option, env: this.options.env, message: read.message }]);
    }
    this.accept(read.digest, read.fingerprint);
  }

  /** The digest of the current token, re-reading the file when it may have changed. */
  async digest(): Promise<Buffer> {
    if (this.now() - this.checkedAt >= this.recheckMs) {
      this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
      await this.refreshing;
    }
    if (!this.current) throw new ConfigError([{ path: this.options.option, env: this.options.env, message: 'token not loaded' }]);
    return this.current;
  }

  private async refresh(): Promise<void> {
    const read = await this.read(this.fingerprint);
    if (read.ok) {
      if (read.fingerprint !== this.fingerprint && this.current) this.options.logger.info({ file: this.path }, 'API token file changed; new token in use');
      this.accept(read.digest, read.fingerprint);
    } else if (read.unchanged) {
      this.checkedAt = this.now();
    } else {
      // Keep the last good token; look again at the next interval.
      this.checkedAt = this.now();
      this.options.logger.warn({ file: this.path, problem: read.message }, 'API token file unusable; keeping the previous token');
    }
  }

  private accept(digest: Buffer, fingerprint: string): void {
    this.current = digest;
    this.fingerprint = fingerprint;
    this.checkedAt = this.now();
  }

  private async read(
    known?: string,
  ): Promise<{ ok: true; digest: Buffer; fingerprint: string } | { ok: false; unchanged: boolean; message: string }> {
    let text: string;
    let fingerprint: string;
    try {
      const st = await stat(this.path);
      fingerprint = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      if (known !== undefined && fingerprint === known) return { ok: false, unchanged: true, message: 'unchanged' };
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      return { ok: false, unchanged: false, message: `cannot read ${this.path}: ${messageOf(err)}` };
    }
    // The same rule as `hearth config check`; its problem never quotes the token (messages end up in logs).
    const token = parseApiToken(text);
    if (!token.ok) return { ok: false, unchanged: false, message: `${this.path} ${token.problem}` };
    return { ok: true, digest: tokenDigest(token.token), fingerprint };
  }
}
