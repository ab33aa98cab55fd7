import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../deploy/tools.js';

/** Paths of a certificate and its key. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/** A throwaway CA with one server certificate (for 127.0.0.1) and client certificates by CN. */
export interface TestPki {
  readonly ca: CertFiles;
  readonly server: CertFiles;
  readonly clients: Readonly<Record<string, CertFiles>>;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  const res = await run('openssl', args, { cwd });
  if (res.code !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${res.stderr}`);
}

async function signed(dir: string, name: string, subject: string, extensions: string, ca: CertFiles): Promise<CertFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', files.key, '-out', csr, '-subj', subject], dir);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '1', '-out', files.cert, '-extfile', ext], dir);
  return files;
}

/**
 * Creates a CA, a server certificate valid for 127.0.0.1 and localhost, and one client
 * certificate per name (the name is the CN, which etcd takes as the user name) in `dir`,
 * with openssl. Keys are P-256, certificates valid for one day.
 */
export async function makePki(dir: string, clientNames: readonly string[], caName = 'hearth-test-ca'): Promise<TestPki> {
  const ca = { cert: join(dir, `${caName}.crt`), key: join(dir, `${caName}.key`) };
  await openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-keyout', ca.key, '-out', ca.cert, '-subj', `/CN=${caName}`],
    dir,
  );
  const server = await signed(
    dir,
    `${caName}-server`,
    '/CN=127.0.0.1',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n',
    ca,
  );
  const clients: Record<string, CertFiles> = {};
  for (const name of clientNames) {
    clients[name] = await signed(dir, `${caName}-client-${name}`, `/CN=${name}`, 'keyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n', ca);
  }
  return { ca, server, clients };
}
