/**
 * What RabbitMQ's refusals mean. amqplib and Node's TLS report a wrong password, an untrusted
 * certificate or a missing permission in their own words (an OpenSSL alert number, a frame
 * dump); this turns them into a {@link BackendAccessError} whose `reason` a program can test
 * and whose message says which option or broker setting to look at. Pure: no I/O.
 *
 * Messages name users, vhosts, files and options, never a password (amqplib's own texts
 * carry none either: the broker answers "Login was refused", not what was sent).
 */
import { type AccessDeniedReason, BackendAccessError, messageOf } from '../errors.js';

/** What hearth tried to connect with, for the explanation. */
export interface AmqpTarget {
  readonly url: string;
  readonly prefix: string;
  readonly certFile: string;
  readonly passwordFile: string;
}

/** Node's certificate verification codes: the broker's certificate is not trusted. */
const UNTRUSTED_SERVER = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REJECTED',
]);

/** TLS alerts the broker sends when it rejects the client certificate hearth presented. */
const REJECTED_CLIENT_CERT = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);

/**
 * The refusal in `err` (or its causes), or `undefined` when `err` is not one (the broker is
 * down, unreachable, slow: those stay plain BackendUnavailableErrors).
 */
export function explainAmqpFailure(err: unknown, target: AmqpTarget): BackendAccessError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const found = explainOne(e, target);
    if (found) return new BackendAccessError('amqp', found.reason, found.message, { cause: err });
  }
  return undefined;
}

function explainOne(err: Error, target: AmqpTarget): { reason: AccessDeniedReason; message: string } | undefined {
  const { user, vhost } = parts(target.url);
  const text = messageOf(err);
  const code = (err as { code?: unknown }).code;
  const login = /ACCESS[-_]REFUSED - Login was refused using authentication mechanism (\w+)/.exec(text);
  if (login) {
    const mechanism = login[1] ?? '';
    return mechanism === 'EXTERNAL'
      ? {
          reason: 'credentials',
          message:
            'RabbitMQ refused the login with hearth\'s client certificate (EXTERNAL): it needs a RabbitMQ user named like the ' +
            'certificate\'s CN (ssl_cert_login_from = common_name) with permissions on the vhost',
        }
      : {
          reason: 'credentials',
          message: `RabbitMQ refused the login of user "${user}" (${mechanism}): no such user, or the wrong password (${target.passwordFile ? `amqp.passwordFile ${target.passwordFile}` : 'the password in amqp.url'})`,
        };
  }
  const access = /ACCESS[-_]REFUSED - access to (exchange|queue) '([^']*)' in vhost '([^']*)' refused for user '([^']*)'/.exec(text);
  if (access) {
    return {
      reason: 'permission',
      message:
        `RabbitMQ user "${access[4]}" may not use ${access[1]} '${access[2]}' in vhost '${access[3]}': grant it configure, write and read ` +
        `on ${permissionPattern(target.prefix)} (rabbitmqctl set_permissions, see docs/security.md)`,
    };
  }
  // amqplib reports the broker's refusal of the vhost as an unexpected frame, without its text.
  if (/Expected ConnectionOpenOk; got <ConnectionClose|NOT_ALLOWED - (access to )?vhost/.test(text)) {
    return {
      reason: 'permission',
      message: `RabbitMQ refused vhost "${vhost}" to user "${user || 'from the certificate'}": the vhost does not exist, or the user has no permissions on it`,
    };
  }
  if (typeof code !== 'string') return undefined;
  if (UNTRUSTED_SERVER.has(code)) {
    return { reason: 'tls', message: `RabbitMQ's server certificate is not trusted (${code}): amqp.caFile must hold the CA that signed it` };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return { reason: 'tls', message: `RabbitMQ's server certificate does not name the host in amqp.url (${code}): connect by a name or IP address it lists` };
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || (code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' && target.certFile === '')) {
    // Over TLS 1.2 the broker says only "handshake failure" (alert 40) when a certificate is
    // missing; TLS 1.3 has a specific alert (116).
    return { reason: 'client-certificate', message: `RabbitMQ requires a client certificate (${code}): set amqp.certFile and amqp.keyFile` };
  }
  if (REJECTED_CLIENT_CERT.has(code)) {
    return {
      reason: 'tls',
      message: `RabbitMQ rejected hearth's client certificate (${code}): it must be signed by a CA in the broker's ssl_options.cacertfile, and be valid now`,
    };
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return { reason: 'tls', message: `no TLS on RabbitMQ's port (${code}): amqps:// needs the broker's TLS listener (usually 5671), not the plain one (5672)` };
  }
  return undefined;
}

/**
 * The permission regex (configure, write and read) that gives a user hearth's names and no
 * others: the exchange named `prefix` and every name starting with `prefix.`.
 */
export function permissionPattern(prefix: string): string {
  return `^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\..*)?$`;
}

function parts(url: string): { user: string; vhost: string } {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname.replace(/^\//, '');
    return { user: decodeURIComponent(parsed.username), vhost: path === '' ? '/' : decodeURIComponent(path) };
  } catch {
    return { user: '', vhost: '' };
  }
}
