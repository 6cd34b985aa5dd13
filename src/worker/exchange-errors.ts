// Why an attempt was aborted from our side. The exchange tells them apart by class: each ends the
// exchange differently (DC, DT, or another attempt), none of them is the upstream's fault.

export class ClientGoneError extends Error {
  readonly code = 'LLM_PROXY_CLIENT_GONE';
  constructor() {
    super('client went away');
  }
}

/** The client stopped reading: its response could not be written for `timeouts.idle`. */
export class ClientStalledError extends Error {
  readonly code = 'LLM_PROXY_CLIENT_STALLED';
  constructor() {
    super('client stopped reading the response');
  }
}

export class HeldTooLongError extends Error {
  readonly code = 'LLM_PROXY_HELD_TOO_LONG';
  constructor() {
    super('upstream error body too long to hold for a retry');
  }
}
