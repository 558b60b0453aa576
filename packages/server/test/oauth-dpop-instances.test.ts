// Two instances behind one issuer share the OAuth store, so a DPoP proof accepted by one is a
// replay at the other: the token endpoint keeps proof ids there, not in process memory.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteStores } from '../src/store/sqlite.js';
import { startTestServer, type TestServer } from './helpers.js';
import { addClient, form } from './oauth-helpers.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

let a: TestServer;
let b: TestServer;
let client: { id: string; secret: string };
before(async () => {
  const shared = mkdtempSync(path.join(tmpdir(), 'tessera-dpop-'));
  // Each instance opens the one file on a connection of its own, as two processes would; each has
  // a data folder of its own, since a data folder serves one server.
  const file = path.join(shared, 'tessera.sqlite');
  const folder = (name: string) => path.join(shared, name);
  a = await startTestServer({ dataDir: folder('a') }, { stores: openSqliteStores(file) });
  b = await startTestServer(
    { dataDir: folder('b'), issuer: a.config.issuer },
    { stores: openSqliteStores(file) },
  );
  b.clock.now = a.clock.now;
  const added = await addClient(a, {
    name: 'Batch job',
    type: 'confidential',
    authMethod: 'client_secret_post',
    redirectUris: [],
    grantTypes: ['client_credentials'],
    scopes: ['api'],
  });
  client = { id: added.client.id, secret: added.secret! };
});
after(async () => {
  await a.close();
  await b.close();
});

function proof(): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: publicKey.export({ format: 'jwk' }) };
  const claims = {
    htm: 'POST',
    htu: `${a.config.issuer}/oauth/token`,
    iat: Math.floor(a.clock.now / 1000),
    jti: randomUUID(),
  };
  const input = `${b64(header)}.${b64(claims)}`;
  const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const tokenRequest = (srv: TestServer, dpop: string) =>
  form(
    srv,
    '/oauth/token',
    { grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret },
    { dpop },
  );

describe('DPoP replay across instances', () => {
  it('a proof used at one instance is refused at the other', async () => {
    const once = proof();
    const first = await tokenRequest(a, once);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.token_type, 'DPoP');
    const again = await tokenRequest(b, once);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_dpop_proof');
    assert.equal(again.body.error_description, 'The DPoP proof was used before.');
    const fresh = await tokenRequest(b, proof());
    assert.equal(fresh.status, 200, 'the other instance takes a new proof');
  });
});
