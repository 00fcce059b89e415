/**
 * The SQLite store meets the backend-independent Store contract (issue #5).
 */
import { sqliteHarness } from './helpers.js'
import { runStoreContract } from './store-contract.js'

runStoreContract('sqlite', sqliteHarness)
