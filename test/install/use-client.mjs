// Run by the install test with plain node, in a folder where the packed packages are installed:
// a Node program signing in with @tessera/client (header delivery). Prints what it saw as JSON.
import { isClientError, TesseraClient } from '@tessera/client';

const client = new TesseraClient({ issuer: process.env.ISSUER });
await client.login(process.env.USERNAME, process.env.PASSWORD);
const me = await client.me();
const sessions = await client.sessions();
await client.logout();
let afterLogout = 'signed in';
try {
  await client.me();
} catch (err) {
  if (!isClientError(err)) throw err;
  afterLogout = err.code;
}
client.close();
console.log(
  JSON.stringify({
    username: me.user.username,
    mode: me.session.mode,
    sessions: sessions.length,
    afterLogout,
  }),
);
