import { readFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { currentProcess, machineAddresses, parseBootId, parsePidNamespace, parseProcStat, readProcess } from '../../../src/fencing/process-identity.js';

/** A stat line as Linux writes it, with `comm` in field 2 and the given state and start ticks. */
function statLine(comm: string, state: string, startTicks: string): string {
  // Fields 4…21 (18 of them), then 22 = start ticks, then a few more.
  const middle = Array.from({ length: 18 }, (_, i) => String(i + 1)).join(' ');
  return `4242 (${comm}) ${state} ${middle} ${startTicks} 123456 789 18446744073709551615 0 0\n`;
}

describe('parseProcStat', () => {
  it('reads the state (field 3) and the start ticks (field 22)', () => {
    expect(parseProcStat(statLine('node', 'S', '453332'))).toEqual({ state: 'S', startTicks: '453332' });
  });

  it.each([
    ['spaces', 'my worker'],
    ['a closing parenthesis and more fields in it', 'evil) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99'],
    ['nested parentheses', '((x))'],
    ['only a parenthesis', ')'],
    ['nothing', ''],
  ])('finds the fields after the last ) whatever the command name holds (%s)', (_what, comm) => {
    expect(parseProcStat(statLine(comm, 'Z', '777'))).toEqual({ state: 'Z', startTicks: '777' });
  });

  it('refuses text that is not a stat line', () => {
    expect(parseProcStat('')).toBeUndefined();
    expect(parseProcStat('4242 node S 1 2')).toBeUndefined();
    expect(parseProcStat('4242 (node) S 1 2 3')).toBeUndefined();
    expect(parseProcStat(statLine('node', 'S', 'later'))).toBeUndefined();
  });
});

describe('parseBootId and parsePidNamespace', () => {
  it('accept what Linux writes, trimmed', () => {
    expect(parseBootId('FB6B09A2-cdab-428e-a20f-32be8cc9f943\n')).toBe('fb6b09a2-cdab-428e-a20f-32be8cc9f943');
    expect(parsePidNamespace('pid:[4026531836]')).toBe('pid:[4026531836]');
  });

  it('refuse anything else', () => {
    expect(parseBootId('')).toBeUndefined();
    expect(parseBootId('not-a-uuid')).toBeUndefined();
    expect(parsePidNamespace('net:[4026531840]')).toBeUndefined();
    expect(parsePidNamespace('pid:[]')).toBeUndefined();
  });
});

describe('machineAddresses', () => {
  const info = (address: string, internal = false): NetworkInterfaceInfo =>
    ({ address, internal, family: address.includes(':') ? 'IPv6' : 'IPv4', netmask: '', mac: '', cidr: null, ...(address.includes(':') ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo;

  it('keeps non-loopback, non-link-local addresses, sorted, each once', () => {
    expect(
      machineAddresses({
        lo: [info('127.0.0.1', true), info('::1', true)],
        eth0: [info('10.0.0.7'), info('fe80::1'), info('2001:db8::7')],
        eth1: [info('192.168.1.5'), info('10.0.0.7')],
        down: undefined,
      }),
    ).toEqual(['10.0.0.7', '192.168.1.5', '2001:db8::7']);
  });
});

describe('currentProcess', () => {
  it("reads this process's pid, start ticks, boot id and pid namespace from /proc", async () => {
    const self = await currentProcess(await loadConfig({ env: {} }));
    expect(self.pid).toBe(process.pid);
    expect(self.startTicks).toMatch(/^\d+$/);
    expect(self.bootId).toBe((await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim());
    expect(self.pidNamespace).toMatch(/^pid:\[\d+\]$/);
    expect(self.hostname).not.toBe('');
    expect(self.pod).toBeUndefined();
    // The same process read from outside: the same start time.
    expect(await readProcess(process.pid)).toEqual({ startTicks: self.startTicks, exited: false });
  });

  it('records the pod when its name is configured', async () => {
    const config = await loadConfig({ env: { HEARTH_FENCING_POD_NAME: 'hearth-1', HEARTH_FENCING_POD_UID: 'u-1', HEARTH_FENCING_POD_NAMESPACE: 'storage', HEARTH_FENCING_POD_NODE: 'node-3' } });
    expect((await currentProcess(config)).pod).toEqual({ name: 'hearth-1', uid: 'u-1', namespace: 'storage', node: 'node-3', container: 'hearth' });
  });
});

describe('readProcess', () => {
  it('is undefined for a pid that names no process', async () => {
    // Above pid_max on every Linux (at most 2^22).
    expect(await readProcess(4_194_304 + 1)).toBeUndefined();
    expect(await readProcess(0)).toBeUndefined();
    expect(await readProcess(-1)).toBeUndefined();
  });
});
