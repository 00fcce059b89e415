/**
 * The subscription tree: a trie over topic levels, for routing. Each node
 * holds the plain subscriptions of its filter by client id, and the shared
 * subscriptions by group name. Matching walks one branch per level plus the
 * `+` and `#` branches; nothing is allocated per message but the result.
 */
import type { SubscriptionRecord } from '../store/store.js'
import type { Qos } from './types.js'

/** A subscription as routing needs it. */
export interface RouteEntry {
  readonly clientId: string
  readonly record: SubscriptionRecord
  /** Granted QoS (may be below the requested one). */
  readonly qos: Qos
  readonly shareGroup?: string | undefined
}

/** The members of one `$share/{group}/{filter}` and whose turn it is. */
export interface ShareGroup {
  readonly name: string
  readonly members: Map<string, RouteEntry>
  /** Round-robin cursor into `members`' insertion order. */
  next: number
}

class Node {
  readonly children = new Map<string, Node>()
  readonly subscribers = new Map<string, RouteEntry>()
  readonly groups = new Map<string, ShareGroup>()

  isEmpty(): boolean {
    return this.children.size === 0 && this.subscribers.size === 0 && this.groups.size === 0
  }
}

/** Collects matches of one topic; reused by the caller if it likes. */
export interface MatchResult {
  readonly subscribers: RouteEntry[]
  readonly groups: ShareGroup[]
}

/** Topics whose match results are remembered until the tree changes. */
const MATCH_CACHE_MAX_ENTRIES = 4096

export class SubscriptionTree {
  readonly #root = new Node()
  #count = 0
  // Routing asks for the same few topics again and again; any change to the
  // tree empties the cache.
  readonly #cache = new Map<string, MatchResult>()

  /** Number of subscriptions held. */
  get size(): number {
    return this.#count
  }

  /** Add or replace; returns true when it replaced an existing one. */
  add(filter: string, entry: RouteEntry): boolean {
    this.#cache.clear()
    let node = this.#root
    for (const level of filter.split('/')) {
      let child = node.children.get(level)
      if (!child) {
        child = new Node()
        node.children.set(level, child)
      }
      node = child
    }
    if (entry.shareGroup === undefined) {
      const existed = node.subscribers.has(entry.clientId)
      node.subscribers.set(entry.clientId, entry)
      if (!existed) this.#count++
      return existed
    }
    let group = node.groups.get(entry.shareGroup)
    if (!group) {
      group = { name: entry.shareGroup, members: new Map(), next: 0 }
      node.groups.set(entry.shareGroup, group)
    }
    const existed = group.members.has(entry.clientId)
    group.members.set(entry.clientId, entry)
    if (!existed) this.#count++
    return existed
  }

  /** Remove a client's subscription; returns true if there was one. */
  remove(filter: string, clientId: string, shareGroup?: string): boolean {
    this.#cache.clear()
    const path: Node[] = [this.#root]
    const levels = filter.split('/')
    let node = this.#root
    for (const level of levels) {
      const child = node.children.get(level)
      if (!child) return false
      path.push(child)
      node = child
    }
    let removed: boolean
    if (shareGroup === undefined) {
      removed = node.subscribers.delete(clientId)
    } else {
      const group = node.groups.get(shareGroup)
      removed = group?.members.delete(clientId) ?? false
      if (group && group.members.size === 0) node.groups.delete(shareGroup)
    }
    if (removed) this.#count--
    // Prune empty nodes bottom-up so the tree does not keep dead branches.
    for (let i = levels.length; i > 0; i--) {
      const child = path[i] as Node
      if (!child.isEmpty()) break
      ;(path[i - 1] as Node).children.delete(levels[i - 1] as string)
    }
    return removed
  }

  /** Every subscription whose filter matches `topic`. The result must not be changed. */
  match(topic: string): MatchResult {
    const cached = this.#cache.get(topic)
    if (cached) return cached
    const result: MatchResult = { subscribers: [], groups: [] }
    const levels = topic.split('/')
    // [MQTT-4.7.2-1] filters starting with a wildcard do not match '$' topics
    const dollar = topic.charCodeAt(0) === 0x24
    this.#walk(this.#root, levels, 0, result, dollar)
    if (this.#cache.size >= MATCH_CACHE_MAX_ENTRIES) this.#cache.clear()
    this.#cache.set(topic, result)
    return result
  }

  #walk(node: Node, levels: string[], depth: number, out: MatchResult, dollar: boolean): void {
    if (depth === levels.length) {
      collect(node, out)
      // 'a/#' also matches 'a' [MQTT-4.7.1-2 note]
      const hash = node.children.get('#')
      if (hash) collect(hash, out)
      return
    }
    const skipWildcards = dollar && depth === 0
    if (!skipWildcards) {
      const hash = node.children.get('#')
      if (hash) collect(hash, out)
      const plus = node.children.get('+')
      if (plus) this.#walk(plus, levels, depth + 1, out, dollar)
    }
    const exact = node.children.get(levels[depth] as string)
    if (exact) this.#walk(exact, levels, depth + 1, out, dollar)
  }
}

function collect(node: Node, out: MatchResult): void {
  for (const entry of node.subscribers.values()) out.subscribers.push(entry)
  for (const group of node.groups.values()) out.groups.push(group)
}
