/**
 * Named errors. Every error phimq raises is a `PhimqError` with a stable
 * string `code`; `docs/errors.md` lists each code and a test keeps the two in
 * step. Messages are short, lower-case, and never carry payloads, PHI,
 * passwords or full certificate subjects. Retired codes are never reused.
 */
export class PhimqError extends Error {
  readonly code: string = 'PHIMQ_ERROR'
  /** The MQTT reason code, when the failure reaches the wire. */
  readonly reasonCode: number | undefined = undefined

  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/**
 * One problem of a config file, without its content: where it is and what
 * kind of problem it is (a YAML error code, a schema issue code, or an
 * errno code when the file cannot be read). Safe for an audit event.
 */
export interface ConfigProblem {
  /** Key path, e.g. `listeners.0.port`; `(root)` for the whole document. */
  readonly key?: string | undefined
  readonly line?: number | undefined
  readonly column?: number | undefined
  readonly code: string
}

/** The configuration file is missing, unreadable, or fails the schema. */
export class ConfigError extends PhimqError {
  override readonly code = 'PHIMQ_CONFIG_INVALID'
  /** Each problem found, located, without the file's content. */
  readonly problems: readonly ConfigProblem[]

  constructor(
    message: string,
    options?: ErrorOptions & { problems?: readonly ConfigProblem[] | undefined },
  ) {
    super(message, options)
    this.problems = options?.problems ?? []
  }
}

/** A listener is configured in a way the security rules forbid. */
export class InsecureListenerError extends PhimqError {
  override readonly code = 'PHIMQ_LISTENER_INSECURE'
}

/** A listener could not bind its address. */
export class ListenError extends PhimqError {
  override readonly code = 'PHIMQ_LISTEN_FAILED'
}

/** A packet broke the MQTT specification; the connection is closed. */
export class ProtocolViolationError extends PhimqError {
  override readonly code = 'PHIMQ_PROTOCOL_VIOLATION'
  override readonly reasonCode: number

  constructor(message: string, reasonCode: number, options?: ErrorOptions) {
    super(message, options)
    this.reasonCode = reasonCode
  }
}

/** A packet declared a size above the negotiated maximum. */
export class PacketTooLargeError extends PhimqError {
  override readonly code = 'PHIMQ_PACKET_TOO_LARGE'
  override readonly reasonCode = 0x95
}

/** The store failed to read or write. */
export class StoreError extends PhimqError {
  override readonly code = 'PHIMQ_STORE_FAILED'
}

/** The store's master key is missing, malformed, or does not open the stored data keys. */
export class MasterKeyError extends PhimqError {
  override readonly code = 'PHIMQ_MASTER_KEY_INVALID'
}

/** The store's database is held by another process (a running broker). */
export class StoreBusyError extends PhimqError {
  override readonly code = 'PHIMQ_STORE_BUSY'
}

/**
 * The CA passphrase is missing, too short, or does not decrypt the CA keys.
 * (Its code was `PHIMQ_CA_PASSPHRASE` before 0.1: retired, because it read as
 * the environment variable even when the passphrase came from a file.)
 */
export class CaPassphraseError extends PhimqError {
  override readonly code = 'PHIMQ_CA_PASSPHRASE_INVALID'
}

/** The CA directory is missing, already initialised, or its files are damaged. */
export class CaStateError extends PhimqError {
  override readonly code = 'PHIMQ_CA_STATE'
}

/** A certificate request breaks the profile: lifetime above the maximum, bad name, unknown serial. */
export class CertificateRequestError extends PhimqError {
  override readonly code = 'PHIMQ_CERT_REQUEST_INVALID'
}

/**
 * A certificate name (tenant, role or id) that a PHI detector flags: it
 * would travel in every audit event of the connection (C21, C26).
 */
export class CertificateNamePhiError extends PhimqError {
  override readonly code = 'PHIMQ_CERT_NAME_PHI'
}

/** A TLS listener's certificate, key, CA bundle or CRL cannot be read or used. */
export class TlsMaterialError extends PhimqError {
  override readonly code = 'PHIMQ_TLS_MATERIAL'
}

/**
 * A CRL's signature does not verify against its issuer among the listener's
 * trusted CAs (C11); the CRL is refused and the previous list stays.
 */
export class CrlSignatureError extends PhimqError {
  override readonly code = 'PHIMQ_CRL_SIGNATURE_INVALID'
}

/** The audit trail could not write; the broker should refuse new work (C27). */
export class AuditWriteError extends PhimqError {
  override readonly code = 'PHIMQ_AUDIT_WRITE_FAILED'
}

/** The audit signing key is missing, unreadable, malformed or too open. */
export class AuditKeyError extends PhimqError {
  override readonly code = 'PHIMQ_AUDIT_KEY_INVALID'
}

/** An audit exporter could not deliver events (syslog, file). */
export class AuditExportError extends PhimqError {
  override readonly code = 'PHIMQ_EXPORT_FAILED'
}

/** The topic policy cannot be built: a rule, class, guard or key is wrong. */
export class PolicyInvalidError extends PhimqError {
  override readonly code = 'PHIMQ_POLICY_INVALID'
}

/** A pseudonym key is missing, unreadable or too short. */
export class PseudonymKeyError extends PhimqError {
  override readonly code = 'PHIMQ_PSEUDONYM_KEY'
}

/** `phimq init` cannot make the data directory, or `phimq start` finds it unusable. */
export class InitError extends PhimqError {
  override readonly code = 'PHIMQ_INIT'
}

/** An auditor cannot be added or removed: bad name, short password, name taken. */
export class AuditorInvalidError extends PhimqError {
  override readonly code = 'PHIMQ_AUDITOR_INVALID'
}

/**
 * A read of the audit trail was refused (C27): no auditor named, wrong
 * password or one-time code, or `--no-auditor` outside `dev`.
 */
export class AuditorDeniedError extends PhimqError {
  override readonly code = 'PHIMQ_AUDITOR_DENIED'
}
