/** A discovery setting a user gave (flag, environment variable, option) is unusable. */
export class DiscoveryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryConfigError';
  }
}

/** No matching node answered in time. */
export class DiscoveryTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryTimeoutError';
  }
}
