import { randomBytes } from 'node:crypto';
import { RabbitServer } from '../../support/rabbitmq.js';
import { freePort } from '../../support/ports.js';
import type { TestPki } from './certs.js';

/** The permission regex docs/security.md gives for the default prefix `hearth`. */
export const HEARTH_PERMISSION = '^hearth(\\..*)?$';

/** A RabbitMQ node with a TLS listener, set up as docs/security.md recommends. */
export interface TlsRabbit {
  readonly server: RabbitServer;
  /** The TLS (amqps) port; the harness's plain listener stays on `server.amqpPort`. */
  readonly tlsPort: number;
  readonly vhost: string;
  /** `amqps://<userinfo>127.0.0.1:<tlsPort>/<vhost>`. */
  url(userinfo?: string): string;
  /** Adds a user with a password (or none: certificate login only) and permissions on the vhost. */
  addUser(name: string, password: string | undefined, permission: string | undefined): Promise<void>;
  /** `rabbitmqctl list_connections` as objects. */
  connections(): Promise<Record<string, unknown>[]>;
  /** Names of the queues in the vhost. */
  queues(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts a private RabbitMQ with a TLS listener on 127.0.0.1 using `pki` (server certificate
 * for 127.0.0.1, clients verified against the CA), a dedicated vhost, and no `guest` (which
 * RabbitMQ would accept from loopback, i.e. from every test). `mtls` makes a client
 * certificate mandatory and enables EXTERNAL with the certificate's CN as the user.
 */
export async function startTlsRabbit(pki: TestPki, options: { readonly mtls: boolean }): Promise<TlsRabbit> {
  const tlsPort = await freePort();
  const server = await RabbitServer.start({
    plugins: options.mtls ? ['rabbitmq_auth_mechanism_ssl'] : [],
    extraConfig: [
      `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
      `ssl_options.cacertfile = ${pki.ca.cert}`,
      `ssl_options.certfile = ${pki.server.cert}`,
      `ssl_options.keyfile = ${pki.server.key}`,
      'ssl_options.verify = verify_peer',
      `ssl_options.fail_if_no_peer_cert = ${options.mtls}`,
      // PLAIN stays on beside EXTERNAL: the harness checks the node with a password login.
      ...(options.mtls ? ['auth_mechanisms.1 = EXTERNAL', 'auth_mechanisms.2 = PLAIN', 'ssl_cert_login_from = common_name'] : []),
    ],
  });
  const vhost = 'hearth-secure';
  try {
    await server.ctl('add_vhost', vhost);
    await server.ctl('delete_user', 'guest');
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    server,
    tlsPort,
    vhost,
    url: (userinfo = '') => `amqps://${userinfo}127.0.0.1:${tlsPort}/${vhost}`,
    async addUser(name, password, permission) {
      // add_user needs a password; a certificate-only user then has it cleared.
      await server.ctl('add_user', name, password ?? randomBytes(16).toString('hex'));
      if (password === undefined) await server.ctl('clear_password', name);
      if (permission !== undefined) await server.ctl('set_permissions', '-p', vhost, name, permission, permission, permission);
    },
    async connections() {
      const out = await server.ctl('list_connections', '-q', 'user', 'vhost', 'ssl', 'ssl_protocol', 'auth_mechanism', 'name', '--formatter', 'json');
      return JSON.parse(out) as Record<string, unknown>[];
    },
    async queues() {
      const out = await server.ctl('list_queues', '-p', vhost, '-q', 'name', '--formatter', 'json');
      return (JSON.parse(out) as { name: string }[]).map((q) => q.name);
    },
    stop: () => server.stop(),
  };
}
