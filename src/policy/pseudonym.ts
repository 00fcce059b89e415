/**
 * Keyed pseudonyms (C22): HMAC-SHA-256 with a per-tenant key, the key id
 * carried in the result so keys can rotate. Unkeyed hashes are never
 * offered: a plain hash of an MRN is reversible by trying every MRN. A
 * keyed pseudonym still counts as PHI.
 */
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { PseudonymKeyConfig } from '../config/policy.js'
import { PseudonymKeyError } from '../errors.js'

/** Shortest key accepted: the HMAC-SHA-256 output size. */
export const PSEUDONYM_KEY_MIN_BYTES = 32

/** Prefix of every pseudonym, naming the scheme. */
export const PSEUDONYM_PREFIX = 'hmac-sha256'

/** One tenant's key. The bytes never leave this module's callers. */
export interface PseudonymKey {
  readonly tenant: string
  readonly keyId: string
  readonly key: Buffer
}

/** Where key files and key variables are read from. */
export interface KeySources {
  /** Folder that relative key files are read from. */
  readonly baseDir: string
  /** Environment to read `env` keys from. */
  readonly env: Readonly<Record<string, string | undefined>>
}

function readKeyText(config: PseudonymKeyConfig, sources: KeySources): string {
  if (config.env !== undefined) {
    const text = sources.env[config.env]
    if (text === undefined || text.trim() === '') {
      throw new PseudonymKeyError(`pseudonym key ${config.keyId}: ${config.env} is not set`)
    }
    return text
  }
  const path = resolve(sources.baseDir, config.file ?? '')
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new PseudonymKeyError(`pseudonym key ${config.keyId}: cannot read ${path}`, {
      cause: err,
    })
  }
}

/** Read every configured key; throws `PseudonymKeyError` naming the key id. */
export function loadPseudonymKeys(
  configs: readonly PseudonymKeyConfig[],
  sources: KeySources,
): Map<string, PseudonymKey> {
  const keys = new Map<string, PseudonymKey>()
  for (const config of configs) {
    const text = readKeyText(config, sources).trim()
    const key = Buffer.from(text, config.encoding)
    if (key.length < PSEUDONYM_KEY_MIN_BYTES) {
      throw new PseudonymKeyError(
        `pseudonym key ${config.keyId}: shorter than ${PSEUDONYM_KEY_MIN_BYTES} bytes ` +
          `after ${config.encoding} decoding`,
      )
    }
    keys.set(config.tenant, { tenant: config.tenant, keyId: config.keyId, key })
  }
  return keys
}

/**
 * The pseudonym of `value` under `key`: `hmac-sha256:<keyId>:<base64url>`.
 * The same value gives the same pseudonym within a tenant, and a different
 * one in another tenant (different key).
 */
export function pseudonymize(key: PseudonymKey, value: string): string {
  // Never a short or empty key: that would be an unkeyed hash in disguise.
  if (key.key.length < PSEUDONYM_KEY_MIN_BYTES) {
    throw new PseudonymKeyError(`pseudonym key ${key.keyId}: shorter than 32 bytes`)
  }
  const mac = createHmac('sha256', key.key).update(value, 'utf8').digest('base64url')
  return `${PSEUDONYM_PREFIX}:${key.keyId}:${mac}`
}
