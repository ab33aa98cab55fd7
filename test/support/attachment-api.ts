import { expect } from 'vitest';

/** An HTTP answer: status and parsed body (undefined when empty). */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * A small client of hearth's Cinder API for the attachment tests (admin, noauth, project
 * `admin`), at microversion 3.70 unless a call says otherwise.
 */
export class AttachmentApi {
  constructor(
    readonly apiUrl: string,
    private readonly project = 'admin',
  ) {}

  async raw(method: string, path: string, body?: unknown, version = '3.70'): Promise<Answer> {
    const res = await fetch(`${this.apiUrl}/v3/${this.project}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'openstack-api-version': `volume ${version}`, 'x-auth-token': `admin:${this.project}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  }

  async ok(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.raw(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return (res.body ?? {}) as Record<string, unknown>;
  }

  async volume(id: string): Promise<Record<string, unknown>> {
    return (await this.ok('GET', `/volumes/${id}`)).volume as Record<string, unknown>;
  }

  async waitStatus(id: string, status: string, timeoutMs = 30_000): Promise<void> {
    await expect.poll(async () => (await this.volume(id)).status, { timeout: timeoutMs, interval: 100 }).toBe(status);
  }

  async waitGone(id: string, timeoutMs = 30_000): Promise<void> {
    await expect.poll(async () => (await this.raw('GET', `/volumes/${id}`)).status, { timeout: timeoutMs, interval: 100 }).toBe(404);
  }

  async createAvailableVolume(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const created = await this.ok('POST', '/volumes', { volume: { size: 1, name, ...extra } });
    const id = (created.volume as { id: string }).id;
    await this.waitStatus(id, 'available');
    return id;
  }

  async deleteVolume(id: string): Promise<void> {
    await this.ok('DELETE', `/volumes/${id}`);
    await this.waitGone(id);
  }

  /** attachment-create with a connector: the attachment's id once connected. */
  async attach(volumeId: string, connector: Record<string, unknown>): Promise<string> {
    const body = await this.ok('POST', '/attachments', { attachment: { volume_uuid: volumeId, connector } });
    return (body.attachment as { id: string }).id;
  }

  async complete(attachmentId: string): Promise<void> {
    await this.ok('POST', `/attachments/${attachmentId}/action`, { 'os-complete': null });
  }
}
