/**
 * The memory store meets the backend-independent Store contract: a reopen
 * is the same instance, which keeps its maps across close and open.
 */
import { MemoryStore } from '../../src/store/memory-store.js'
import { runStoreContract } from './store-contract.js'

runStoreContract('memory', async () => {
  const store = new MemoryStore()
  return { store, reopen: async () => store, cleanup: async () => {} }
})
