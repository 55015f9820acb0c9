/**
 * Ring collectives for data-parallel training:
 *
 *   const node = await RingNode.listen({ rank, worldSize, cluster: 'lab', host });   // tell others node.address
 *   const ring = await node.join(nextRankAddress, { dataPlane: 'tcp-threaded' });
 *   const collective = new RingCollective(ring.membership, { chunkBytes: 1 << 20 });
 *   const grads = allocateRingBuffer(n);            // reused every step
 *   await collective.allReduce(grads, { op: 'mean' });
 *   await collective.broadcast(weights, 0);
 *   await collective.allGather(parts);              // rank r fills collective.segmentOf(parts.length)
 *
 * See docs/readme-parts/allreduce.md.
 */
export { RingCollective, allocateRingBuffer, DEFAULT_CHUNK_BYTES, type RingOptions, type AllReduceOptions, type CollectiveStats } from './ring-collective.js';
export { RingNode, ringMessages, type RingNodeOptions, type JoinOptions, type JoinedRing, type DataPlane, type RingAddress } from './ring-setup.js';
export type { RingChannel, RingMembership, FrameTag, ReceivedFrame } from './ring-channel.js';
export { RingError, type RingErrorKind } from './ring-errors.js';
export type { ReduceOp } from './ring-plans.js';
export type { WireCodec } from './wire-codec.js';
export { Float32Codec } from './float32-codec.js';
export { createLocalRing, type LocalRingOptions } from './local-channel.js';
export { launchRing, type LaunchOptions, type RankOutcome } from './launch/launch-ring.js';
export { joinRingFromLauncher, rankFromEnv, reportToLauncher } from './launch/join-from-launcher.js';
