// `make run` in a terminal: pino-pretty's human-readable lines (secrets still redacted), JSON for
// a collector, and the one ready line with the URLs and the next command to try.
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readyLine, urlOf } from '../../../src/cli/ready-line.js';
import { createLogger, resolveLogFormat } from '../../../src/observability/logger.js';

/** A stream that keeps what is written to it. */
function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

/** Lets the pretty stream's pipeline deliver what was logged. */
async function drained(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('log.format', () => {
  it('auto is pretty on a terminal and JSON otherwise; pretty and json are forced as given', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });

  it('pretty writes one readable line per entry: time, level, component and message, fields after, secrets redacted', async () => {
    const out = sink();
    const logger = createLogger({ level: 'info', format: 'pretty', colorize: false, destination: out.stream, base: { host: 'h1@file', cluster: 'demo@file' } });
    logger.child({ component: 'backend' }).warn({ reason: 'no marker file', password: 'hunter2', url: 'amqp://guest:s3cret@10.0.0.1:5672' }, 'the backend is down: taking no new jobs until a check passes');
    logger.info('hearth started');
    await drained();
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: backend: the backend is down: taking no new jobs until a check passes /);
    expect(lines[0]).toContain('"reason":"no marker file"');
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hearth started/);
    const text = out.text();
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('s3cret');
    // Not JSON, and without the fields every line carries.
    expect(() => JSON.parse(lines[1] ?? '') as unknown).toThrow();
    expect(text).not.toContain('demo@file');
    expect(text).not.toContain('"pid"');
  });

  it('json writes one JSON object per line, as before', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
    logger.info({ n: 1 }, 'hello');
    expect(lines).toEqual([expect.objectContaining({ level: 'info', msg: 'hello', n: 1 })]);
  });
});

describe('the ready line of hearth serve', () => {
  const v4 = (address: string, port: number): AddressInfo => ({ address, family: 'IPv4', port });

  it('names the API and metrics URLs and the next command to try', () => {
    const line = readyLine({ api: v4('127.0.0.1', 8776), ops: v4('127.0.0.1', 9776) });
    expect(line.msg).toBe('ready: API http://127.0.0.1:8776, metrics http://127.0.0.1:9776/metrics; try: hearth volume create 1 && hearth volume list');
    expect(line.fields).toEqual({ api: 'http://127.0.0.1:8776', metrics: 'http://127.0.0.1:9776/metrics', next: 'hearth volume create 1 && hearth volume list' });
  });

  it('a worker-only process has no API: metrics and hearth members', () => {
    expect(readyLine({ ops: v4('10.0.0.5', 9776) }).msg).toBe('ready: metrics http://10.0.0.5:9776/metrics (no API in this process); try: hearth members');
  });

  it('puts IPv6 in brackets and shows a wildcard address as loopback', () => {
    expect(urlOf({ address: '::1', family: 'IPv6', port: 1 })).toBe('http://[::1]:1');
    expect(urlOf({ address: '0.0.0.0', family: 'IPv4', port: 2 })).toBe('http://127.0.0.1:2');
    expect(urlOf({ address: '::', family: 'IPv6', port: 3 })).toBe('http://[::1]:3');
  });
});
