// How the contract suites are handed their stores.
import { after, before } from 'node:test';
import { closeStores } from '../../src/store/open.js';
import type { Stores } from '../../src/store/ports.js';
import type { CountersFixture } from './counters.js';
import type { SessionsFixture } from './sessions.js';

/** What a contract suite is handed: a factory of stores that no test here can collide with. */
export type Open<K extends keyof Stores> = () => Promise<Pick<Stores, K | 'backends'>>;

/** Opens the stores once for the enclosing describe and closes them after it; call inside it. */
export function opened<K extends keyof Stores>(open: Open<K>): { readonly stores: Pick<Stores, K> } {
  const holder: { stores: Pick<Stores, K | 'backends'> | undefined } = { stores: undefined };
  before(async () => {
    holder.stores = await open();
  });
  after(async () => {
    if (holder.stores) await closeStores(holder.stores);
  });
  return {
    get stores() {
      if (!holder.stores) throw new Error('stores not open yet');
      return holder.stores;
    },
  };
}

/** The session contract's fixture over a backend that keeps users beside sessions. */
export function sessionsOn(open: Open<'sessions' | 'users'>): () => Promise<SessionsFixture> {
  return async () => {
    const stores = await open();
    return {
      sessions: stores.sessions,
      addUser: async (u) => {
        await stores.users.createUser(u);
      },
      close: () => closeStores(stores),
    };
  };
}

/** The counters contract's fixture over a backend. */
export function countersOn(open: Open<'counters'>): () => Promise<CountersFixture> {
  return async () => {
    const stores = await open();
    return { counters: stores.counters, close: () => closeStores(stores) };
  };
}
