/**
 * MQTT reason codes, named as the MQTT 5.0 specification names them (section 2.4).
 * The one place in the code base where their numbers are written down.
 */
export const ReasonCode = {
  Success: 0x00,
  GrantedQos1: 0x01,
  GrantedQos2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QosNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const

export type ReasonCodeName = keyof typeof ReasonCode
export type ReasonCodeValue = (typeof ReasonCode)[ReasonCodeName]

/**
 * MQTT 3.1.1 CONNACK return codes (section 3.2.2.3).
 */
export const ConnackReturnCodeV4 = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const

/**
 * Map a 5.0 CONNACK reason code to the nearest 3.1.1 return code, for refusals
 * sent to a 3.1.1 client.
 */
export function toConnackReturnCodeV4(code: number): number {
  switch (code) {
    case ReasonCode.Success:
      return ConnackReturnCodeV4.Accepted
    case ReasonCode.UnsupportedProtocolVersion:
      return ConnackReturnCodeV4.UnacceptableProtocolVersion
    case ReasonCode.ClientIdentifierNotValid:
      return ConnackReturnCodeV4.IdentifierRejected
    case ReasonCode.BadUserNameOrPassword:
    case ReasonCode.BadAuthenticationMethod:
      return ConnackReturnCodeV4.BadUserNameOrPassword
    case ReasonCode.ServerUnavailable:
    case ReasonCode.ServerBusy:
    case ReasonCode.ServerShuttingDown:
    case ReasonCode.ConnectionRateExceeded:
    case ReasonCode.QuotaExceeded:
      return ConnackReturnCodeV4.ServerUnavailable
    default:
      return ConnackReturnCodeV4.NotAuthorized
  }
}

/** SUBACK failure code of MQTT 3.1.1 (section 3.9.3). */
export const SUBACK_FAILURE_V4 = 0x80

/** The name of a reason code, for logs and audit events; `unknown` if none. */
export function reasonCodeName(code: number): string {
  for (const [name, value] of Object.entries(ReasonCode)) {
    if (value === code) return name
  }
  return 'unknown'
}
