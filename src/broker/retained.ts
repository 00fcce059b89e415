/**
 * Retained messages, one per Topic Name, in a trie so a Topic Filter finds
 * its matches without scanning every topic.
 */
import type { Message } from './types.js'

class Node {
  readonly children = new Map<string, Node>()
  message: Message | undefined
}

export class RetainedMessages {
  readonly #root = new Node()
  #count = 0

  get size(): number {
    return this.#count
  }

  /** Set, replace, or with `undefined` clear, the retained message of a topic. */
  set(topic: string, message: Message | undefined): void {
    const levels = topic.split('/')
    const path: Node[] = [this.#root]
    let node = this.#root
    for (const level of levels) {
      let child = node.children.get(level)
      if (!child) {
        if (!message) return
        child = new Node()
        node.children.set(level, child)
      }
      path.push(child)
      node = child
    }
    if (node.message && !message) this.#count--
    if (!node.message && message) this.#count++
    node.message = message
    if (message) return
    for (let i = levels.length; i > 0; i--) {
      const child = path[i] as Node
      if (child.message || child.children.size > 0) break
      ;(path[i - 1] as Node).children.delete(levels[i - 1] as string)
    }
  }

  get(topic: string): Message | undefined {
    let node: Node | undefined = this.#root
    for (const level of topic.split('/')) {
      node = node.children.get(level)
      if (!node) return undefined
    }
    return node.message
  }

  /** Every retained message whose topic matches `filter`. */
  match(filter: string): Message[] {
    const out: Message[] = []
    this.#walk(this.#root, filter.split('/'), 0, out)
    return out
  }

  /** Every retained message, for snapshots and purges. */
  all(): Message[] {
    const out: Message[] = []
    everything(this.#root, out, false, 0)
    return out
  }

  #walk(node: Node, levels: string[], depth: number, out: Message[]): void {
    if (depth === levels.length) {
      if (node.message) out.push(node.message)
      return
    }
    const level = levels[depth] as string
    if (level === '#') {
      // '#' matches the parent level too; at the root it skips '$' topics [MQTT-4.7.2-1]
      if (node.message) out.push(node.message)
      everything(node, out, depth === 0, depth)
      return
    }
    if (level === '+') {
      for (const [name, child] of node.children) {
        if (depth === 0 && name.startsWith('$')) continue
        this.#walk(child, levels, depth + 1, out)
      }
      return
    }
    const child = node.children.get(level)
    if (child) this.#walk(child, levels, depth + 1, out)
  }
}

function everything(node: Node, out: Message[], skipDollar: boolean, depth: number): void {
  for (const [name, child] of node.children) {
    if (skipDollar && depth === 0 && name.startsWith('$')) continue
    if (child.message) out.push(child.message)
    everything(child, out, false, depth + 1)
  }
}
