/**
 * The one line `hearth serve` logs once it is ready: where the API and the metrics are, and the
 * next command to try — the operator's first minute, so it names URLs a person can paste.
 */
import type { AddressInfo } from 'node:net';

/** `http://host:port` for a bound address: IPv6 in brackets, a wildcard address as loopback. */
export function urlOf(address: AddressInfo): string {
  const host = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  return `http://${address.family === 'IPv6' || host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

/** The ready line's fields and message for the addresses `hearth serve` bound. Pure. */
export function readyLine(addresses: { readonly api?: AddressInfo; readonly ops: AddressInfo }): { fields: Record<string, string>; msg: string } {
  const metrics = `${urlOf(addresses.ops)}/metrics`;
  if (!addresses.api) {
    const next = 'hearth members';
    return { fields: { metrics, next }, msg: `ready: metrics ${metrics} (no API in this process); try: ${next}` };
  }
  const api = urlOf(addresses.api);
  // The CLI finds the API from the same configuration (api.listen); `--url` when it listens elsewhere.
  const next = 'hearth volume create 1 && hearth volume list';
  return { fields: { api, metrics, next }, msg: `ready: API ${api}, metrics ${metrics}; try: ${next}` };
}
