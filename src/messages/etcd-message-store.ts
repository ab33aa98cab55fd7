import type { Etcd3 } from 'etcd3';
import { fromEtcdError } from '../etcd/errors.js';
import type { KeyLayout } from '../etcd/keys.js';
import { decodeMessage, type MessageStore, type UserMessage } from './message-store.js';

/**
 * User messages on etcd: one key per message, `messages/<id>`, no lease (a message outlives
 * the member that wrote it). Expired ones are filtered out on read and removed by
 * {@link deleteExpired}.
 *
 * Failure semantics: every call has the client's deadline and fails with a retryable
 * `BackendUnavailableError` when etcd cannot be reached.
 */
export class EtcdMessageStore implements MessageStore {
  constructor(private readonly options: { readonly client: Etcd3; readonly keys: KeyLayout }) {}

  async create(message: UserMessage): Promise<void> {
    await this.call('writing a user message', () => this.options.client.put(this.options.keys.message(message.id)).value(JSON.stringify(message)).exec());
  }

  async get(id: string, nowMs: number): Promise<UserMessage | undefined> {
    const text = await this.call('reading a user message', () => this.options.client.get(this.options.keys.message(id)).string());
    const message = text === null ? undefined : decodeMessage(text);
    return message && message.expiresAtMs > nowMs ? message : undefined;
  }

  async list(projectId: string | undefined, nowMs: number): Promise<UserMessage[]> {
    return (await this.all()).filter((m) => m.expiresAtMs > nowMs && (projectId === undefined || m.projectId === projectId));
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.call('deleting a user message', () => this.options.client.delete().key(this.options.keys.message(id)).exec());
    return Number(res.deleted) > 0;
  }

  async deleteExpired(nowMs: number): Promise<number> {
    let removed = 0;
    for (const m of await this.all()) if (m.expiresAtMs <= nowMs && (await this.delete(m.id))) removed++;
    return removed;
  }

  async close(): Promise<void> {
    // The client belongs to the composition root.
  }

  private async all(): Promise<UserMessage[]> {
    const values = await this.call('listing user messages', () => this.options.client.getAll().prefix(this.options.keys.messages()).strings());
    return Object.values(values).map(decodeMessage).filter((m): m is UserMessage => m !== undefined);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw fromEtcdError(err, what);
    }
  }
}
