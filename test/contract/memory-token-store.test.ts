import { ManualClock } from '../../src/shared/clock.js';
import { MemoryTokenStore } from '../../src/store/memory-token-store.js';
import { runTokenStoreContract } from './token-store.contract.js';

runTokenStoreContract('MemoryTokenStore', async (options) => {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const store = new MemoryTokenStore({ clock, retentionMs: options?.retentionMs ?? 60 * 60_000 });
  return { store, clock, cleanup: () => store.close() };
});
