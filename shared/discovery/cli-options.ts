import { COORDINATOR_ENV, isMdnsEnabled, MDNS_ENV, resolveCoordinatorAddress, type CoordinatorAddressChoice } from './coordinator-address.js';

/** `node:util` parseArgs options for discovery; spread them into a command's own options. */
export const discoveryFlagOptions = {
  interface: { type: 'string' },
  coordinator: { type: 'string' },
  'no-mdns': { type: 'boolean' },
} as const;

export const DISCOVERY_FLAGS_HELP = `  --cluster NAME           cluster name; nodes of other clusters are ignored
  --interface IP|NAME      run mDNS on this interface only (e.g. eth0, 192.168.1.20, lo) [all]
  --coordinator HOST:PORT  connect to this coordinator instead of discovering it
                           (env ${COORDINATOR_ENV}; the flag wins)
  --no-mdns                neither advertise nor browse with mDNS (env ${MDNS_ENV}=0)`;

/** Discovery settings from parsed flags plus the environment, validated. */
export interface DiscoverySettings {
  /** `--interface` as given (resolved when mDNS starts), undefined for all interfaces. */
  interface: string | undefined;
  /** May this process use mDNS (advertise and browse)? */
  mdns: boolean;
  /**
   * How a peer reaches the coordinator. Computed lazily: a coordinator process neither needs
   * nor validates `--coordinator`.
   */
  coordinatorAddress(): CoordinatorAddressChoice;
}

export function discoverySettingsFromFlags(
  values: { interface?: string | boolean | undefined; coordinator?: string | boolean | undefined; 'no-mdns'?: string | boolean | undefined },
  env: NodeJS.ProcessEnv = process.env,
): DiscoverySettings {
  const iface = typeof values.interface === 'string' ? values.interface : undefined;
  const coordinatorFlag = typeof values.coordinator === 'string' ? values.coordinator : undefined;
  const noMdnsFlag = values['no-mdns'] === true;
  const mdns = isMdnsEnabled({ noMdnsFlag, env });
  return {
    interface: iface,
    mdns,
    coordinatorAddress: () => resolveCoordinatorAddress({ coordinatorFlag, noMdnsFlag, env }),
  };
}
