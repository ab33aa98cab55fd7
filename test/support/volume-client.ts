// A small client of hearth's Cinder-compatible volume API for tests and benchmarks (noauth,
// project `admin`), and helpers that wait for an operation's outcome by polling the API.

/** A volume or snapshot as the API shows it (the fields tests look at). */
export interface Shown {
  readonly id: string;
  readonly status: string;
  readonly size: number;
}

/** Thrown for an answer other than the one expected. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

/** See the module doc. */
export class VolumeClient {
  private readonly base: string;

  constructor(apiUrl: string) {
    this.base = `${apiUrl}/v3/admin`;
  }

  private async call(method: string, path: string, body: unknown, expected: number, what: string): Promise<string> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status !== expected) throw new ApiError(res.status, text, what);
    return text;
  }

  /** Creates a volume; resolves with its id (the operation runs on). */
  async createVolume(size: number, name?: string): Promise<string> {
    const text = await this.call('POST', '/volumes', { volume: { size, ...(name ? { name } : {}) } }, 202, 'create volume');
    return (JSON.parse(text) as { volume: { id: string } }).volume.id;
  }

  /**
   * Creates a volume from a source (`source_volid` or `snapshot_id`), as cinderclient sends it;
   * the answer as it came (202 with the volume, or Cinder's fault), never thrown.
   */
  async createFrom(source: { readonly sourceVolid?: string; readonly snapshotId?: string }, size: number | null = null): Promise<{ status: number; id?: string; message?: string }> {
    const res = await fetch(`${this.base}/volumes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ volume: { size, snapshot_id: source.snapshotId ?? null, source_volid: source.sourceVolid ?? null } }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json()) as { volume?: { id: string }; badRequest?: { message: string }; itemNotFound?: { message: string } };
    return { status: res.status, ...(body.volume ? { id: body.volume.id } : {}), ...((body.badRequest ?? body.itemNotFound) ? { message: (body.badRequest ?? body.itemNotFound)!.message } : {}) };
  }

  /** Deletes a volume or snapshot; the answer's status and fault message, never thrown. */
  async tryDelete(type: 'volume' | 'snapshot', id: string): Promise<{ status: number; message?: string }> {
    const res = await fetch(`${this.base}/${type}s/${id}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    const fault = text === '' ? undefined : (JSON.parse(text) as Record<string, { message?: string }>);
    const message = fault && Object.values(fault)[0]?.message;
    return { status: res.status, ...(message === undefined ? {} : { message }) };
  }

  async extendVolume(id: string, newSize: number): Promise<void> {
    await this.call('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: newSize } }, 202, 'extend volume');
  }

  async deleteVolume(id: string): Promise<void> {
    await this.call('DELETE', `/volumes/${id}`, undefined, 202, 'delete volume');
  }

  async createSnapshot(volumeId: string): Promise<string> {
    const text = await this.call('POST', '/snapshots', { snapshot: { volume_id: volumeId } }, 202, 'create snapshot');
    return (JSON.parse(text) as { snapshot: { id: string } }).snapshot.id;
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.call('DELETE', `/snapshots/${id}`, undefined, 202, 'delete snapshot');
  }

  /** The volume or snapshot, or undefined once it is gone (404). */
  async show(type: 'volume' | 'snapshot', id: string): Promise<Shown | undefined> {
    const res = await fetch(`${this.base}/${type}s/${id}`, { signal: AbortSignal.timeout(30_000) });
    if (res.status === 404) return undefined;
    const text = await res.text();
    if (res.status !== 200) throw new ApiError(res.status, text, `show ${type}`);
    const body = JSON.parse(text) as Record<string, Shown>;
    return body[type];
  }

  /**
   * Polls until `done(shown)` holds; resolves with the last answer. Rejects after `timeoutMs`,
   * or at once when the resource reaches an error status.
   */
  async until(type: 'volume' | 'snapshot', id: string, done: (shown: Shown | undefined) => boolean, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<Shown | undefined> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      const shown = await this.show(type, id);
      if (done(shown)) return shown;
      if (shown?.status.startsWith('error')) throw new Error(`${type} ${id} reached ${shown.status}`);
      if (Date.now() > deadline) throw new Error(`${type} ${id} did not get there in time; last: ${JSON.stringify(shown)}`);
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
    }
  }

  /**
   * The five operations of one volume's life, each awaited: create, extend, snapshot create,
   * snapshot delete, delete. Resolves with the ids and each operation's latency (request to
   * outcome seen, ms).
   */
  async lifecycle(options: { intervalMs?: number; timeoutMs?: number } = {}): Promise<{ volumeId: string; snapshotId: string; latenciesMs: number[] }> {
    const latenciesMs: number[] = [];
    const timed = async <T>(op: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      const value = await op();
      latenciesMs.push(performance.now() - started);
      return value;
    };
    const volumeId = await timed(async () => {
      const id = await this.createVolume(1);
      await this.until('volume', id, (v) => v?.status === 'available', options);
      return id;
    });
    await timed(async () => {
      await this.extendVolume(volumeId, 2);
      await this.until('volume', volumeId, (v) => v?.status === 'available' && v.size === 2, options);
    });
    const snapshotId = await timed(async () => {
      const id = await this.createSnapshot(volumeId);
      await this.until('snapshot', id, (s) => s?.status === 'available', options);
      return id;
    });
    await timed(async () => {
      await this.deleteSnapshot(snapshotId);
      await this.until('snapshot', snapshotId, (s) => s === undefined, options);
    });
    await timed(async () => {
      await this.deleteVolume(volumeId);
      await this.until('volume', volumeId, (v) => v === undefined, options);
    });
    return { volumeId, snapshotId, latenciesMs };
  }
}

/** Runs `count` tasks with at most `lanes` at a time; resolves with their results in order. */
export async function inLanes<T>(count: number, lanes: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}
