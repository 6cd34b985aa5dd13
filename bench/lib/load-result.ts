// One measured run of a closed- or open-loop load generator against one target.
export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests that did not end in a 2xx: socket errors, timeouts and other statuses. */
  errors: number;
}
