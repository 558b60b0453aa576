import { BlockList, isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { TesseraError } from '../errors.js';
import { safeEqual, sha256 } from '../util/crypto.js';

/**
 * Access to what only the operator's own machines should read (the revocation feed, /metrics):
 * a bearer secret, or a client IP on `internalAllow`. With neither configured it is open only
 * while `internalAuth` is off (the default for a plain-HTTP issuer).
 * Throws 401 `unauthorized` or 403 `forbidden`.
 */
export function internalAccess(
  config: Config,
  token: string | undefined,
  tokenSetting: string,
): (request: FastifyRequest) => void {
  const allow = new BlockList();
  for (const entry of config.internalAllow) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) allow.addAddress(address, family);
    else allow.addSubnet(address, Number(prefix), family);
  }
  const open = token === undefined && config.internalAllow.length === 0 && !config.internalAuth;
  const expected = token === undefined ? undefined : sha256(token);
  return (request) => {
    if (open) return;
    const ip = request.ip;
    if (
      config.internalAllow.length > 0 &&
      isIP(ip) !== 0 &&
      allow.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6')
    )
      return;
    if (expected !== undefined) {
      const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(request.headers.authorization ?? '');
      // Hashing first makes the comparison constant-time whatever the length presented.
      if (m && safeEqual(sha256(m[1]!), expected)) return;
      throw new TesseraError('unauthorized', 'A valid bearer token is needed here.');
    }
    throw new TesseraError(
      'forbidden',
      config.internalAllow.length > 0
        ? 'This address may not read this resource.'
        : `Not readable until ${tokenSetting} or TESSERA_INTERNAL_ALLOW is configured.`,
    );
  };
}
