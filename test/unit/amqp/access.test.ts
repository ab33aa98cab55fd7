import { describe, expect, it } from 'vitest';
import { BackendAccessError, BackendUnavailableError } from '../../../src/errors.js';
import { explainAmqpFailure, permissionPattern } from '../../../src/amqp/access.js';
import { hostQueueName, noticeQueueName, topologyFor } from '../../../src/routing/topology.js';

// The texts and codes below are what amqplib 2.3 and Node 20 reported against RabbitMQ 3.10
// on Erlang 25 (test/integration/security/rabbitmq-tls-auth.test.ts meets each for real).

const target = { url: 'amqps://hearth:pw-not-in-messages@127.0.0.1:5671/hearth-vh', prefix: 'hearth', certFile: '', passwordFile: '' };

function tlsError(code: string, message = 'SSL routines'): Error {
  return Object.assign(new Error(message), { code });
}

describe('explainAmqpFailure', () => {
  it('names the user and the password\'s source for a refused login, never the password', () => {
    const err = explainAmqpFailure(
      new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."'),
      target,
    );
    expect(err).toBeInstanceOf(BackendAccessError);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err).toMatchObject({ code: 'BACKEND_ACCESS_DENIED', reason: 'credentials', backend: 'amqp', retryable: true });
    expect(err?.message).toBe('RabbitMQ refused the login of user "hearth" (PLAIN): no such user, or the wrong password (the password in amqp.url)');
    expect(explainAmqpFailure(new Error('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.'), { ...target, passwordFile: '/etc/pw' })?.message).toContain(
      'amqp.passwordFile /etc/pw',
    );
  });

  it('points an EXTERNAL refusal at the certificate\'s CN', () => {
    const err = explainAmqpFailure(new Error('ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile.'), target);
    expect(err).toMatchObject({ reason: 'credentials' });
    expect(err?.message).toMatch(/client certificate \(EXTERNAL\).*CN/);
  });

  it('turns a refused exchange or queue into the permission regex to grant', () => {
    const err = explainAmqpFailure(
      new Error('Channel closed by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - access to exchange \'hearth\' in vhost \'hearth-vh\' refused for user \'narrow\'"'),
      target,
    );
    expect(err).toMatchObject({ reason: 'permission' });
    expect(err?.message).toBe(
      'RabbitMQ user "narrow" may not use exchange \'hearth\' in vhost \'hearth-vh\': grant it configure, write and read on ^hearth(\\..*)?$ (rabbitmqctl set_permissions, see docs/security.md)',
    );
  });

  it('reads amqplib\'s bare "Expected ConnectionOpenOk" as a refused vhost', () => {
    const err = explainAmqpFailure(new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'), target);
    expect(err).toMatchObject({ reason: 'permission' });
    expect(err?.message).toBe('RabbitMQ refused vhost "hearth-vh" to user "hearth": the vhost does not exist, or the user has no permissions on it');
  });

  it('tells an untrusted server certificate from a missing or rejected client certificate', () => {
    expect(explainAmqpFailure(tlsError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), target)).toMatchObject({
      reason: 'tls',
      message: expect.stringContaining('amqp.caFile') as unknown,
    });
    expect(explainAmqpFailure(tlsError('ERR_TLS_CERT_ALTNAME_INVALID'), target)?.message).toMatch(/does not name the host/);
    expect(explainAmqpFailure(tlsError('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), target)).toMatchObject({
      reason: 'client-certificate',
      message: expect.stringContaining('set amqp.certFile and amqp.keyFile') as unknown,
    });
    // TLS 1.2 has no specific alert: a handshake failure without a certificate is read as one.
    expect(explainAmqpFailure(tlsError('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'), target)).toMatchObject({ reason: 'client-certificate' });
    expect(explainAmqpFailure(tlsError('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'), { ...target, certFile: '/c.pem' })).toBeUndefined();
    expect(explainAmqpFailure(tlsError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), target)).toMatchObject({
      reason: 'tls',
      message: expect.stringContaining("rejected hearth's client certificate") as unknown,
    });
    expect(explainAmqpFailure(tlsError('ERR_SSL_WRONG_VERSION_NUMBER'), target)?.message).toMatch(/not the plain one/);
  });

  it('finds the refusal in a cause, and leaves outages alone', () => {
    const wrapped = new Error('setup failed', { cause: tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE') });
    expect(explainAmqpFailure(wrapped, target)).toMatchObject({ reason: 'tls' });
    expect(explainAmqpFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5671'), { code: 'ECONNREFUSED' }), target)).toBeUndefined();
    expect(explainAmqpFailure(new Error('connect ETIMEDOUT'), target)).toBeUndefined();
    expect(explainAmqpFailure('not an error', target)).toBeUndefined();
  });

  it('never repeats the URL\'s password', () => {
    const errors = [
      new Error('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.'),
      new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'),
      tlsError('SELF_SIGNED_CERT_IN_CHAIN'),
    ];
    for (const e of errors) expect(explainAmqpFailure(e, target)?.message).not.toContain('pw-not-in-messages');
  });
});

describe('permissionPattern', () => {
  it('matches every name of the topology and nothing outside the prefix', () => {
    const pattern = new RegExp(permissionPattern('hearth'));
    const t = topologyFor('hearth', 'ceph@rbd', 'node1@rbd');
    const names = [t.exchange, t.clusterQueue, t.hostQueue, t.noticeExchange, t.deadExchange, t.deadQueue, hostQueueName('hearth', 'c@b', 'h@b'), noticeQueueName('hearth', 'ceph@rbd', 'node1@rbd', 'x1')];
    for (const name of names) expect(pattern.test(name), name).toBe(true);
    for (const name of ['hearthx', 'hearth2.volume', 'other.hearth', 'amq.gen-abc', 'amq.default', '']) expect(pattern.test(name), name).toBe(false);
  });

  it('escapes regex characters of the prefix', () => {
    expect(permissionPattern('my.app')).toBe('^my\\.app(\\..*)?$');
    expect(new RegExp(permissionPattern('my.app')).test('myxapp')).toBe(false);
  });
});
