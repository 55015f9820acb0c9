/**
 * Capacity planner: should this model train data-parallel or as a pipeline on these peers, and how?
 *
 *   const measurements = await measureNamedModel({ model: 'mlp', batchSize: 128, optimizer: 'adam' });  // seconds, once
 *   const loopback = await measureLoopbackLink();
 *   const cluster = localCluster({ count: 2, freeMemoryBytes: os.freemem(), load: localHostLoad(measurements.load), loopback });
 *   const plan = planCapacity(measurements, cluster, { batchSize: 128 });                              // pure, instant
 *   plan.recommendation.summary; formatPlan(plan);
 *
 * Measuring (measure-*.ts) is separate from planning (plan-capacity.ts and what it calls), so a
 * dashboard measures a model once and re-plans whenever peers come or go. See docs/readme-parts/plan.md.
 */
export { measureModel, profiledBatchSizes, type MeasureModelOptions } from './measure-model.js';
export { measureNamedModel, type MeasureNamedModelOptions } from './measure-named-model.js';
export { measureLoopbackLink, type LoopbackMeasurement, type MeasureLoopbackOptions } from './measure-link.js';
export { measureSharing, withMeasuredLocalHost, type MeasureSharingOptions, type SharingMeasurement } from './measure-sharing.js';
export type { LayerMeasurement, ModelMeasurements } from './model-measurements.js';
export { LoadMeter, localHostLoad, type MeasuredLoad } from './machine-load.js';
export { peerCoreShare, competingFromShare, IDLE_HOST, type HostLoad } from './host-sharing.js';
export { clusterFromFile, parsePeersFile, localCluster, uniformCluster, linkBetween, LOCAL_HOST, PeersFileError, peersFileSchema, type ClusterSpec, type LinkMeasurement, type PeerSpec, type PeersFile } from './cluster.js';
export { clusterFromDiscovery, discoverPeers, type DiscoverPeersOptions } from './discover-peers.js';
export { planCapacity, DEFAULT_BUBBLE_TARGET, type CapacityPlan, type ClusterSummary, type PlanOptions } from './plan-capacity.js';
export { predictDataParallel, ringAllReduceMs, localBatches, type DataParallelPrediction } from './predict-data-parallel.js';
export { predictPipelines, predictPipelineWith, microBatchesForBubble, type PipelinePrediction, type StagePlan } from './predict-pipeline.js';
export { simulatePipeline, type SimulatedStage, type PipelineSimulation } from './simulate-pipeline.js';
export { recommend, type Recommendation, type PlanMode } from './recommend.js';
export { reportModel, type ModelReport, type LayerReport } from './model-report.js';
export { formatPlan } from './format-plan.js';
export { parseBytes, parseBandwidth, formatBytes, formatBandwidth, formatMs, UnitError } from './units.js';
export { OPTIMIZER_SLOTS, isOptimizerName, type OptimizerName } from './optimizer-state.js';
export { LivePlanner, liveCluster, type LiveJob, type LivePeer, type LivePlanAnswer, type LivePlanPending } from './live-plan.js';
export { measureCrossing, crossingMs, type CrossingCost } from './measure-crossing.js';
export { measureBatchAssembly } from './measure-batch-assembly.js';
