/**
 * The admin side of one API process at microversion 3.26 (the replication API's: failover,
 * freeze, thaw, and the clusters' replication fields), as the replication tests and the
 * `replication` bench call it.
 */
export class ReplicationAdmin {
  constructor(private readonly apiUrl: string) {}

  /** One call as the admin; the parsed body (undefined when empty). */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
    const res = await fetch(`${this.apiUrl}/v3/admin${path}`, {
      method,
      headers: { 'openstack-api-version': 'volume 3.26', 'x-auth-token': 'admin:admin', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> | undefined };
  }

  /** The cluster as `GET /clusters/<name>` shows it. */
  async cluster(name: string): Promise<Record<string, unknown>> {
    return (await this.call('GET', `/clusters/${name}`)).body?.cluster as Record<string, unknown>;
  }
}
