// A fence that cannot succeed, on real etcd and RabbitMQ with real `hearth serve` processes: the
// dead worker's work stays fenced off (its orphan is not taken over, however often cleanup is
// asked), hearth retries and shows why, and an operator's `hearth fence confirm` releases it.
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal, started, startWorker } from '../../support/orphans-cluster.js';
import { waitFor } from '../../support/wait.js';

type Row = Record<string, unknown>;

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) }, {});
  return { code, out, err };
}

describe('a fence that keeps failing', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    const dir = await mkdtemp(join(tmpdir(), 'hearth-failing-fence-'));
    journal = join(dir, 'journal.jsonl');
    // The power switch cannot be reached: every attempt fails, saying why.
    const command = join(dir, 'fence-unreachable');
    await writeFile(command, '#!/bin/sh\necho "BMC of $HEARTH_FENCE_HOST unreachable: no route to host" >&2\nexit 1\n');
    await chmod(command, 0o755);
    env = memberEnv(etcd, amqp, 'ff', journal, {
      // Long enough that the extend is still running once the rescuer has started, on a loaded machine too.
      HEARTH_DRIVER_FAKE_LATENCY_MS: '10000',
      HEARTH_ORPHANS_SWEEP_INTERVAL_MS: '1000',
      HEARTH_FENCING_METHOD: 'exec',
      HEARTH_FENCING_EXEC_COMMAND: command,
      HEARTH_FENCING_RETRY_MAX_DELAY_MS: '1000',
    });
  });
  afterAll(async () => {
    for (const p of procs) p.resume();
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('leaves the orphan untouched while it fails, shows why, alerts by metric; hearth fence confirm releases it', async () => {
    const api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    const url = ['--url', api.apiUrl];
    const client = new ClusterClient(api);
    // The frozen worker keeps its broker connection until RabbitMQ misses two heartbeats.
    const victim = await startWorker(env, 'victim', { HEARTH_AMQP_HEARTBEAT_SECONDS: '1' });
    procs.push(victim);
    const vol = await client.createVolume();
    await client.waitStatus('volume', vol, 'available');
    await client.extend(vol, 2);
    await started(journal, 'extendVolume', `volume:${vol}`);
    const rescuer = await startWorker(env, 'rescuer');
    procs.push(rescuer);
    const rc = new ClusterClient(rescuer);

    // Frozen, not gone: the process check on this machine cannot fence it, the command fails.
    victim.pause();
    await waitFor(async () => (await rc.metric('hearth_fences_total', { method: 'exec', result: 'failed' })) >= 2, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'the fence to fail twice (retried)',
    });
    expect(await rc.metric('hearth_incarnations_awaiting_fence')).toBe(1);
    expect(await rc.metric('hearth_fences_total', { method: 'exec', result: 'fenced' })).toBe(0);

    // The operator's views say what waits and why.
    const list = await cli('fence', 'list', '--json', ...url);
    expect(list.code).toBe(0);
    const { awaiting } = JSON.parse(list.out) as { awaiting: Row[] };
    expect(awaiting).toEqual([expect.objectContaining({ host: 'victim@be', seen_dying: true })]);
    const [waiting] = awaiting as [Row];
    expect(String(waiting.last_error)).toContain('BMC of victim@be unreachable: no route to host');
    expect(Number(waiting.attempts)).toBeGreaterThanOrEqual(1);
    const incarnation = String(waiting.incarnation);
    const table = await cli('fence', 'list', ...url);
    expect(table.out).toContain('Awaiting a fence:');
    expect(table.out).toContain(incarnation);
    const members = JSON.parse((await cli('members', '--json', ...url)).out) as Row[];
    expect(members.find((m) => m.host === 'victim@be')).toMatchObject({ state: 'down', awaiting_fence: [incarnation] });
    expect((await cli('members', ...url)).out).toMatch(/awaiting \(1\)/);
    const orphans = await client.orphans();
    expect(orphans).toEqual([expect.objectContaining({ id: vol, owner_host: 'victim@be' })]);
    expect(orphans[0]?.fence).toMatchObject({ state: 'awaiting' });
    expect((await cli('orphans', ...url)).out).toContain('awaiting');

    // Cleanup, asked for by the operator, takes nothing over.
    const cleanup = await client.workCleanup({ cluster_name: 'ff@be' });
    expect(cleanup.status).toBe(202);
    await waitFor(async () => rescuer.logs().some((l) => l.msg === 'orphan not claimed yet: its dead owner is not fenced yet' && l.id === vol), {
      timeoutMs: 15_000,
      what: 'the cleaner to find the orphan waiting for its fence',
    });
    expect(await client.status('volume', vol)).toBe('extending');
    expect(rescuer.logs().filter((l) => l.msg === 'took over an orphaned operation')).toEqual([]);

    // Confirmation: refused for a live incarnation and for nonsense, then accepted.
    const rescuerInc = String((members.find((m) => m.host === 'rescuer@be') as Row).incarnation);
    const alive = await cli('fence', 'confirm', rescuerInc, ...url);
    expect(alive.code).toBe(1);
    expect(alive.err).toContain('is alive');
    const bad = await cli('fence', 'confirm', 'not-an-incarnation', ...url);
    expect(bad.code).toBe(2);
    const confirmed = await cli('fence', 'confirm', incarnation, '--reason', 'powered off at the rack', ...url);
    expect(confirmed.code).toBe(0);
    expect(confirmed.out).toContain('recorded as fenced');

    await client.waitStatus('volume', vol, 'error_extending');
    const took = rescuer.logs().filter((l) => l.msg === 'took over an orphaned operation');
    expect(took.map((l) => l.id)).toEqual([vol]);
    const after = JSON.parse((await cli('fence', 'list', '--json', ...url)).out) as { awaiting: Row[]; ended: Row[] };
    expect(after.awaiting).toEqual([]);
    expect(after.ended).toContainEqual(expect.objectContaining({ incarnation, how: 'manual', by: 'operator', detail: 'powered off at the rack' }));
    await waitFor(async () => (await rc.metric('hearth_incarnations_awaiting_fence')) === 0, { timeoutMs: 10_000, what: 'the awaiting gauge to drop' });
    const again = await cli('fence', 'confirm', incarnation, ...url);
    expect(again.out).toContain('had already ended (manual by operator)');

    // The frozen process never wrote again; the journal shows no overlap.
    await victim.kill();
    const { report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
  });
});
