/** Emulated LAN for tests and benchmarks: network namespaces on a bridge, optional tbf caps. */
export { createLan, tbfArguments, type Lan, type LanHost, type LanOptions } from './lan.js';
export { checkLanSupport, lanAvailableForTests, reportMissingPrerequisite, STRICT_PREREQS_ENV, type LanSupport } from './support.js';
export { cleanupStale, type CleanupReport } from './cleanup.js';
export { listHarnessNamespaces } from './namespaces.js';
export { measureThroughput, type ThroughputOptions, type ThroughputResult } from './measure-throughput.js';
export { JsonLineReader, nodeWithTsx, type JsonLineReaderOptions } from './child-output.js';
export { hostAddress, LAN_PREFIX_LENGTH, LAN_SUBNET_PREFIX } from './names.js';
