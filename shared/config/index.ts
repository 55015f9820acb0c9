/** Settings from flags or environment variables (containers, Kubernetes). */
export { ConfigError } from './config-error.js';
export { readEnvValue, type EnvValueKind } from './env-value.js';
export { applyEnvFallbacks, envFlagsHelp, type EnvFlag } from './env-flags.js';
export { COORDINATOR_ENV_FLAGS, OTHER_ENV, PEER_ENV_FLAGS } from './command-env.js';
