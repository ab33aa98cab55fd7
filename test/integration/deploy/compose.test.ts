import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { effectiveAuthMode } from '../../../src/config/api-auth.js';
import { loadConfig } from '../../../src/config/load.js';
import { clusterId, isClustered, parseListen } from '../../../src/config/rules.js';
import { repoPath } from './tools.js';

// No Docker engine here: these checks read deploy/compose.yaml and the files it names, and
// validate each worker's environment with hearth's own configuration loader.

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }> | string[];
}
const composeText = readFileSync(repoPath('deploy/compose.yaml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const workers = Object.entries(services).filter(([name]) => /^hearth-\d$/.test(name));
const etcds = Object.entries(services).filter(([name]) => /^etcd-\d$/.test(name));

/** Compose's `${VAR:-default}` interpolation, with the variables unset. */
function interpolate(text: string): string {
  return text.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
    if (fallback === undefined) throw new Error(`\${${name}} has no default`);
    return fallback;
  });
}

function flag(command: readonly string[] | undefined, name: string): string | undefined {
  return command?.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function seconds(duration: string | undefined): number {
  const m = /^(\d+)(s|m)$/.exec(duration ?? '');
  if (!m) return 10; // Compose's default stop grace period
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

describe('deploy/compose.yaml', () => {
  it('runs a 3-member etcd whose members agree on the initial cluster', () => {
    expect(etcds.map(([n]) => n)).toEqual(['etcd-1', 'etcd-2', 'etcd-3']);
    const initial = new Set(etcds.map(([, s]) => flag(s.command, 'initial-cluster')));
    expect(initial.size).toBe(1);
    const members = [...initial][0]!.split(',');
    for (const [name, s] of etcds) {
      expect(flag(s.command, 'name')).toBe(name);
      expect(members).toContain(`${name}=${flag(s.command, 'initial-advertise-peer-urls')}`);
      expect(flag(s.command, 'advertise-client-urls')).toBe(`http://${name}:2379`);
    }
  });

  it('runs three workers of one cluster with distinct hosts and valid configurations', async () => {
    expect(workers).toHaveLength(3);
    const configs = await Promise.all(
      // The secret files exist in the containers only.
      workers.map(([, s]) =>
        loadConfig({ env: Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))])), secretFiles: 'skip' }),
      ),
    );
    expect(new Set(configs.map((c) => clusterId(c))).size).toBe(1);
    expect(new Set(configs.map((c) => c.host))).toEqual(new Set(workers.map(([n]) => n)));
    for (const c of configs) {
      expect(isClustered(c)).toBe(true);
      expect(effectiveAuthMode(c.api)).toBe('token');
      expect(c.driver.name).toBe('file');
      for (const endpoint of c.etcd.endpoints) expect(etcds.map(([n]) => `http://${n}:2379`)).toContain(endpoint);
    }
  });

  it('points the workers at the RabbitMQ user, password and vhost the broker is created with, the password in a file', async () => {
    const rabbit = services.rabbitmq!.environment!;
    const job = services['api-token']!;
    const [jobVolume, jobDir] = job.volumes![0]!.split(':');
    // The job writes the broker's password into the shared volume…
    expect(interpolate(job.environment!.AMQP_PASSWORD!)).toBe(interpolate(rabbit.RABBITMQ_DEFAULT_PASS!));
    expect(job.command?.join(' ')).toContain(`'${jobDir}/amqp-password', process.env.AMQP_PASSWORD`);
    for (const [name, s] of workers) {
      const url = new URL(interpolate(s.environment!.HEARTH_AMQP_URL!));
      expect(url.hostname).toBe('rabbitmq');
      expect(url.username).toBe(rabbit.RABBITMQ_DEFAULT_USER);
      expect(url.password, 'no password in the URL').toBe('');
      expect(url.pathname).toBe(`/${rabbit.RABBITMQ_DEFAULT_VHOST}`);
      // …and the workers read it from there, never from their environment.
      const passwordFile = s.environment!.HEARTH_AMQP_PASSWORD_FILE!;
      expect(passwordFile).toBe(`${dirname(passwordFile)}/amqp-password`);
      expect(s.volumes, name).toContain(`${jobVolume}:${dirname(passwordFile)}:ro`);
      for (const value of Object.values(s.environment!)) expect(interpolate(String(value)), name).not.toContain(interpolate(rabbit.RABBITMQ_DEFAULT_PASS!));
    }
  });

  it('shares one volume directory between the workers, at the file driver\'s directory', () => {
    for (const [name, s] of workers) {
      const dir = s.environment!.HEARTH_DRIVER_FILE_DIR!;
      const mount = s.volumes?.find((v) => v.split(':')[1] === dir);
      expect(mount, name).toBe(`volumes:${dir}`);
    }
    expect(Object.keys(compose.volumes)).toContain('volumes');
  });

  it('hands every worker the API token the api-token job writes', () => {
    const job = services['api-token']!;
    const [jobVolume, jobDir] = job.volumes![0]!.split(':');
    expect(job.command?.join(' ')).toContain(`'${jobDir}/api-token'`);
    for (const [name, s] of workers) {
      const tokenFile = s.environment!.HEARTH_API_TOKEN_FILE!;
      expect(s.volumes, name).toContain(`${jobVolume}:${dirname(tokenFile)}:ro`);
      expect(tokenFile).toBe(`${dirname(tokenFile)}/api-token`);
      expect(s.depends_on).toMatchObject({ 'api-token': { condition: 'service_completed_successfully' } });
    }
  });

  it('publishes ports on 127.0.0.1 only', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const port of s.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('gives workers more time to stop than their drain takes', () => {
    for (const [name, s] of workers) {
      expect(seconds(s.stop_grace_period) * 1000, name).toBeGreaterThan(Number(s.environment!.HEARTH_SHUTDOWN_GRACE_MS) + 5_000);
    }
  });

  it('builds the image from deploy/Dockerfile and pins every other image', () => {
    for (const [name, s] of workers) {
      expect(s.build, name).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(existsSync(join(repoPath('deploy'), s.build!.context, s.build!.dockerfile))).toBe(true);
    }
    for (const [name, s] of Object.entries(services)) expect(s.image, name).toMatch(/:[\w.-]+$/);
    for (const [name, s] of Object.entries(services)) expect(s.image, name).not.toMatch(/:latest$/);
  });

  it('lets Prometheus scrape each worker\'s ops port with the rules mounted beside its configuration', () => {
    const prometheus = parse(readFileSync(repoPath('deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'hearth')!;
    const opsPorts = workers.map(([n, s]) => `${n}:${parseListen(s.environment!.HEARTH_OPS_LISTEN!).port}`);
    expect(job.static_configs.flatMap((c) => c.targets).sort()).toEqual(opsPorts.sort());
    // Paths in the container mirror the checkout: ./prometheus and ./monitoring side by side.
    const mounts = services.prometheus!.volumes!.map((v) => v.split(':'));
    const configDir = mounts.find(([src]) => src === './prometheus')![1]!;
    const monitoringDir = mounts.find(([src]) => src === './monitoring')![1]!;
    for (const rules of prometheus.rule_files) {
      expect(join(configDir, rules)).toBe(join(monitoringDir, 'alerts.yaml'));
      expect(existsSync(join(repoPath('deploy/prometheus'), rules))).toBe(true);
    }
  });
});
