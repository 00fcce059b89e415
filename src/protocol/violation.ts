/**
 * What a wire-layer check returns when a packet breaks the specification.
 * The core turns it into DISCONNECT (5.0) or a plain close (3.1.1).
 */
export interface Violation {
  /** The MQTT 5.0 reason code to send: 0x81, 0x82, 0x94 ... */
  reasonCode: number
  /** The statement id, e.g. `[MQTT-1.5.4-2]`, or the section when there is none. */
  rule: string
  /** Short, lower-case, names the field; never carries packet content. */
  message: string
}

/** Build a {@link Violation}; a function so call sites stay one line. */
export function violation(reasonCode: number, rule: string, message: string): Violation {
  return { reasonCode, rule, message }
}
