/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { ACTIONS, DETAILS, newMessage } from '../../../src/messages/message-store.js';
import { messageRoutes } from '../../../src/messages/routes.js';
import { SqliteMessageStore } from '../../../src/messages/sqlite-message-store.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SQLITE_STATE_FILE, SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { describeMessageStore } from '../../contract/message-store.contract.js';

describeMessageStore('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-messages-'));
  // Beside the state store, on the same file, as a single node runs it.
  const state = SqliteStateStore.open({ path: join(dir, SQLITE_STATE_FILE), clock: systemClock, metrics: createStateMetrics(new Registry()) });
  return {
    store: SqliteMessageStore.open(join(dir, SQLITE_STATE_FILE)),
    cleanup: async () => {
      await state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("Cinder's messages API", () => {
  let dir: string;
  let store: SqliteMessageStore;
  let api: ApiServer;
  const now = Date.UTC(2026, 0, 2, 3, 4, 5);
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-messages-api-'));
    store = SqliteMessageStore.open(join(dir, SQLITE_STATE_FILE));
    api = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, publicUrl: 'http://hearth.example:8776' });
    api.register(messageRoutes({ messages: store, now: () => now }));
  });
  afterEach(async () => {
    await api.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const put = async (projectId: string, createdAtMs: number, resourceUuid = randomUUID()) => {
    const m = newMessage({ projectId, requestId: `req-${randomUUID()}`, resourceType: 'VOLUME', resourceUuid, action: ACTIONS.extendVolume, detail: DETAILS.noBackendAvailable }, randomUUID(), createdAtMs, 60_000);
    await store.create(m);
    return m;
  };
  const call = async (method: 'GET' | 'DELETE', url: string, version = '3.5', user = 'alice:admin') => {
    const res = await api.app.inject({ method, url, headers: { 'x-auth-token': user, 'openstack-api-version': `volume ${version}` } });
    return { status: res.statusCode, body: res.body === '' ? undefined : res.json<Record<string, any>>() };
  };

  it('lists, shows and deletes messages with Cinder\'s view; newest first', async () => {
    const older = await put('admin', now - 2_000);
    const newer = await put('admin', now - 1_000);
    const list = await call('GET', '/v3/admin/messages');
    expect(list.status).toBe(200);
    expect(list.body!.messages.map((m: any) => m.id)).toEqual([newer.id, older.id]);
    const shown = await call('GET', `/v3/admin/messages/${older.id}`);
    expect(shown.body!.message).toEqual({
      id: older.id,
      event_id: 'VOLUME_VOLUME_007_003',
      user_message: 'extend volume:Could not find any available weighted backend.',
      message_level: 'ERROR',
      created_at: '2026-01-02T03:04:03.000000',
      guaranteed_until: '2026-01-02T03:05:03.000000',
      request_id: older.requestId,
      resource_type: 'VOLUME',
      resource_uuid: older.resourceUuid,
      links: [
        { href: `http://hearth.example:8776/v3/admin/messages/${older.id}`, rel: 'self' },
        { href: `http://hearth.example:8776/admin/messages/${older.id}`, rel: 'bookmark' },
      ],
    });
    expect((await call('DELETE', `/v3/admin/messages/${older.id}`)).status).toBe(204);
    expect((await call('GET', `/v3/admin/messages/${older.id}`)).status).toBe(404);
  });

  it('an id that is not a UUID is 404 as in Cinder; below 3.3 there is no messages API', async () => {
    const res = await call('GET', '/v3/admin/messages/not-a-uuid');
    expect(res.status).toBe(404);
    expect(res.body!.itemNotFound.message).toBe('Message not-a-uuid could not be found.');
    expect((await call('DELETE', '/v3/admin/messages/1234')).status).toBe(404);
    expect((await call('GET', '/v3/admin/messages', '3.2')).status).toBe(404);
  });

  it('from 3.5: filters, sort, limit and marker with a next link; an admin\'s filter on no column matches nothing', async () => {
    const volume = randomUUID();
    const a = await put('admin', now - 3_000, volume);
    const b = await put('admin', now - 2_000, volume);
    await put('admin', now - 1_000);
    const filtered = await call('GET', `/v3/admin/messages?resource_uuid=${volume}&sort=created_at:asc&limit=1`);
    expect(filtered.body!.messages.map((m: any) => m.id)).toEqual([a.id]);
    expect(filtered.body!.messages_links[0].href).toContain(`marker=${a.id}`);
    const next = await call('GET', `/v3/admin/messages?resource_uuid=${volume}&sort=created_at:asc&limit=1&marker=${a.id}`);
    expect(next.body!.messages.map((m: any) => m.id)).toEqual([b.id]);
    expect((await call('GET', '/v3/admin/messages?colour=red')).body!.messages).toEqual([]);
    expect((await call('GET', '/v3/admin/messages?all_tenants=1')).body!.messages).toHaveLength(3);
  });
});
