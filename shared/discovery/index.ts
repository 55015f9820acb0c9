/**
 * mDNS / DNS-SD discovery of ringpipe nodes (`_ringpipe._tcp`), with an explicit-address
 * fallback for networks without multicast.
 */
export { advertise, type AdvertiseOptions, type Advertisement } from './advertise.js';
export { browse, NodeBrowser, type BrowseOptions, type NodeBrowserEvents } from './browse.js';
export { discoverCoordinator, locateCoordinator, type CoordinatorLocation, type DiscoverCoordinatorOptions } from './discover-coordinator.js';
export type { DiscoveredNode } from './match-service.js';
export {
  COORDINATOR_ENV,
  MDNS_ENV,
  isMdnsEnabled,
  parseHostPort,
  resolveCoordinatorAddress,
  type CoordinatorAddressChoice,
  type CoordinatorEndpoint,
  type CoordinatorSource,
  type DiscoveryInputs,
} from './coordinator-address.js';
export { DISCOVERY_FLAGS_HELP, discoveryFlagOptions, discoverySettingsFromFlags, type DiscoverySettings } from './cli-options.js';
export { LOOPBACK_INTERFACE, mdnsSocketOptions, resolveInterface, type MdnsInterface } from './network-interface.js';
export { DiscoveryConfigError, DiscoveryTimeoutError } from './errors.js';
export { PROTOCOL_VERSION } from './protocol-version.js';
export { SERVICE_TYPE, SERVICE_TYPE_FQDN, type NodeRole } from './service-type.js';
export type { NodeDescription } from './txt-record.js';
