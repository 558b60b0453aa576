import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryCounters } from '../src/store/memory.js';
import { countersContract } from './contracts/counters.js';
import { T0 } from './contracts/records.js';

countersContract('memory', async () => {
  const counters = new MemoryCounters();
  return { counters, close: () => counters.close() };
});

it('memory counters: the sweep drops ended windows and locks, and keeps live ones', async () => {
  const counters = new MemoryCounters();
  try {
    await counters.hitCounter('gone', 1000, T0);
    await counters.hitCounter('live', 5000, T0);
    await counters.setLock('gone', T0 + 1000);
    await counters.setLock('live', T0 + 5000);
    counters.sweep(T0 + 1000);
    const inside = counters as unknown as { counters: Map<string, unknown>; locks: Map<string, unknown> };
    assert.deepEqual([...inside.counters.keys()], ['live']);
    assert.deepEqual([...inside.locks.keys()], ['live']);
    assert.equal(await counters.getCounter('live', T0 + 1000), 1);
    assert.equal(await counters.getLock('live', T0 + 1000), T0 + 5000);
  } finally {
    await counters.close();
  }
});
