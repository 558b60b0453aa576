// Run by the install test with plain node, in a folder where the packed packages are installed:
// what an API server does with @tessera/verify. Verifies ACCESS_TOKEN against the account
// server's JWKS, refuses a changed signature, then logs the session out and waits for the
// revocation feed to make the same token refused. Prints what it saw as JSON.
import { createVerifier, isVerifyError, RevocationFeedClient, RevocationSet } from '@tessera/verify';

const issuer = process.env.ISSUER;
const token = process.env.ACCESS_TOKEN;

async function refusal(t) {
  try {
    await verifier.verify(t);
    return 'accepted';
  } catch (err) {
    if (!isVerifyError(err)) throw err;
    return err.code;
  }
}

const revocations = new RevocationSet({ maxStalenessMs: 300_000 });
const feed = new RevocationFeedClient({ issuer, set: revocations });
await feed.start();
const verifier = createVerifier({
  issuer,
  audience: 'tessera',
  requiredScopes: ['api'],
  jwks: { url: `${issuer}/.well-known/jwks.json` },
  revocations,
});

const claims = await verifier.verify(token);
const [header, payload, signature] = token.split('.');
const flipped = signature[10] === 'A' ? 'B' : 'A';
const tampered = `${header}.${payload}.${signature.slice(0, 10)}${flipped}${signature.slice(11)}`;
const tamperedCode = await refusal(tampered);

const logout = await fetch(`${issuer}/auth/logout`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}` },
});
let afterLogout = await refusal(token);
for (let i = 0; i < 500 && afterLogout === 'accepted'; i++) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  afterLogout = await refusal(token);
}
await feed.stop();
console.log(
  JSON.stringify({ sub: claims.sub, sid: claims.sid, tamperedCode, logout: logout.status, afterLogout }),
);
