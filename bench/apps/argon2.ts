// Raw argon2id throughput on the account server's own parameters and hashing slots: verifies of
// one hash, HASHING_SLOTS at a time (what the server allows), for BENCH_SECONDS; prints
// {"ops": n, "seconds": s} on stdout. Env: BENCH_SECONDS.
import argon2 from 'argon2';
import { HASHING_SLOTS, PASSWORD_PARAMS } from '../../packages/server/src/domain/passwords.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const password = 'benchmark passphrase 42';
const hash = await argon2.hash(password, PASSWORD_PARAMS);
await argon2.verify(hash, password);
let ops = 0;
const start = performance.now();
const end = start + seconds * 1000;
await Promise.all(
  Array.from({ length: HASHING_SLOTS }, async () => {
    while (performance.now() < end) {
      if (!(await argon2.verify(hash, password))) throw new Error('argon2 verify failed');
      ops++;
    }
  }),
);
process.stdout.write(
  `${JSON.stringify({ ops, seconds: (performance.now() - start) / 1000, slots: HASHING_SLOTS })}\n`,
);
