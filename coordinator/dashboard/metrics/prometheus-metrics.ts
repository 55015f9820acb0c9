import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { classifyStall, INPUT_BOUND_VERDICTS } from '../../../shared/data/stall-verdict.js';
import type { DashboardModel } from '../model/dashboard-model.js';
import type { DashboardView, PeerStatus, StepPoint } from '../model/view-types.js';

const PHASES = ['starting', 'waiting-for-peers', 'forming-epoch', 'training', 'recovering', 'paused', 'finishing', 'finished', 'failed', 'stopped'] as const;
const PEER_STATUSES: readonly PeerStatus[] = ['joining', 'preparing', 'ready', 'training', 'unfit', 'dead', 'left'];
const STEP_PARTS = ['compute', 'communication', 'data_wait'] as const;

/**
 * `/metrics`: the dashboard's figures in the Prometheus text format (prom-client, on a registry of
 * its own so nothing else in the process leaks in). Gauges are set from the dashboard's view when
 * scraped; counters and the step-time histogram count events as they happen.
 */
export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly g: ReturnType<typeof createGauges>;
  private readonly steps: Counter;
  private readonly stepSeconds: Histogram;
  private readonly peerDeaths: Counter;
  private readonly checkpointsWritten: Counter;

  constructor(private readonly model: DashboardModel) {
    const registers = [this.registry];
    this.g = createGauges(registers);
    this.steps = new Counter({ name: 'ringpipe_steps_total', help: 'Optimizer steps completed by the whole cluster since the coordinator started', registers });
    this.stepSeconds = new Histogram({
      name: 'ringpipe_step_seconds',
      help: 'Wall time of a step (compute + communication + data wait, mean over members)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.peerDeaths = new Counter({ name: 'ringpipe_peer_deaths_total', help: 'Peers whose link closed while the job was running', registers });
    this.checkpointsWritten = new Counter({ name: 'ringpipe_checkpoints_written_total', help: 'Checkpoints written since the coordinator started', registers });
    collectDefaultMetrics({ register: this.registry, prefix: 'ringpipe_coordinator_' });
    model.on('point', this.onPoint);
    model.on('peerDied', this.onPeerDied);
    model.on('checkpointWritten', this.onCheckpoint);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition, current as of now. */
  async render(): Promise<string> {
    this.update(this.model.view());
    // prom-client writes NaN as "Nan" (e.g. its event-loop lag between two samples); the text format says "NaN".
    return (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN');
  }

  close(): void {
    this.model.off('point', this.onPoint);
    this.model.off('peerDied', this.onPeerDied);
    this.model.off('checkpointWritten', this.onCheckpoint);
    this.registry.clear();
  }

  private readonly onPoint = (point: StepPoint): void => {
    this.steps.inc();
    const parts = [point.computeMs, point.communicationMs, point.dataWaitMs];
    if (parts.every((ms) => ms !== null)) this.stepSeconds.observe(parts.reduce((total: number, ms) => total + ms!, 0) / 1000);
  };

  private readonly onPeerDied = (): void => this.peerDeaths.inc();
  private readonly onCheckpoint = (): void => this.checkpointsWritten.inc();

  /**
   * A figure not known (yet) — no loss before the first step, no test accuracy before the end — is
   * left out of the exposition, as Prometheus has it, rather than shown as a 0 or NaN that a graph
   * would plot. (prom-client always prints an unlabelled gauge, so it is unregistered instead.)
   */
  private setOrAbsent(gauge: Gauge, value: number | null): void {
    const name = (gauge as unknown as { name: string }).name;
    const registered = this.registry.getSingleMetric(name) !== undefined;
    if (value === null || !Number.isFinite(value)) {
      if (registered) this.registry.removeSingleMetric(name);
      return;
    }
    if (!registered) this.registry.registerMetric(gauge);
    gauge.set(value);
  }

  private update(view: DashboardView): void {
    const { g } = this;
    const { job } = view;
    g.info.reset();
    g.info.set({ cluster: job.cluster, job: job.jobName, run_id: job.runId, model: job.model, mode: job.mode }, 1);
    for (const phase of PHASES) g.phase.set({ phase }, job.phase === phase ? 1 : 0);
    g.epoch.set(job.epoch);
    g.step.set(job.step);
    g.totalSteps.set(job.totalSteps);
    g.samplesPerSecond.set(job.samplesPerSecond);
    this.setOrAbsent(g.loss, job.lastLoss);
    this.setOrAbsent(g.testAccuracy, job.testAccuracy);

    const last = this.model.points.at(-1);
    this.setOrAbsent(g.trainAccuracy, last?.accuracy ?? null);
    g.stepPartSeconds.reset();
    if (last) {
      const parts = { compute: last.computeMs, communication: last.communicationMs, data_wait: last.dataWaitMs };
      for (const part of STEP_PARTS) if (parts[part] !== null) g.stepPartSeconds.set({ part }, parts[part] / 1000);
    }
    this.setOrAbsent(g.busbw, last?.busbwBytesPerSecond ?? null);
    this.setOrAbsent(g.inputStall, last?.stallPercent ?? null);
    g.inputBound.reset();
    const stall = last?.stallPercent ?? null;
    if (stall !== null) for (const verdict of INPUT_BOUND_VERDICTS) g.inputBound.set({ verdict }, classifyStall(stall) === verdict ? 1 : 0);

    for (const status of PEER_STATUSES) g.peers.set({ status }, view.peers.filter((peer) => peer.status === status).length);
    for (const gauge of [g.peerInfo, g.peerUp, g.peerStepsPerSecond, g.peerHeartbeat, g.peerMemory, g.peerStep]) gauge.reset();
    for (const peer of view.peers) {
      const id = { node_id: peer.nodeId };
      g.peerInfo.set({ ...id, hostname: peer.hostname, address: peer.address, backend: peer.backend ?? '', role: peer.role, status: peer.status }, 1);
      g.peerUp.set(id, peer.status === 'dead' || peer.status === 'left' ? 0 : 1);
      if (peer.stepsPerSecond !== null) g.peerStepsPerSecond.set(id, peer.stepsPerSecond);
      if (peer.lastHeartbeat !== null) g.peerHeartbeat.set(id, peer.lastHeartbeat / 1000);
      if (peer.memoryBytes !== null) g.peerMemory.set(id, peer.memoryBytes);
      if (peer.step !== null) g.peerStep.set(id, peer.step);
    }

    const newest = view.checkpoints[0];
    g.checkpointsKept.set(view.checkpoints.length);
    this.setOrAbsent(g.checkpointStep, newest?.step ?? null);
    this.setOrAbsent(g.checkpointBytes, newest?.bytes ?? null);
    this.setOrAbsent(g.checkpointTime, newest ? Date.parse(newest.savedAt) / 1000 : null);

    g.pipelineBubble.reset();
    g.pipelineStageBubble.reset();
    if (view.pipeline) {
      if (view.pipeline.measuredBubble !== null) g.pipelineBubble.set({ kind: 'measured' }, view.pipeline.measuredBubble);
      g.pipelineBubble.set({ kind: 'theoretical' }, view.pipeline.theoreticalBubble);
      for (const row of view.pipeline.rows) if (row.bubble !== null) g.pipelineStageBubble.set({ stage: String(row.stage), replica: String(row.replica) }, row.bubble);
    }
    const distillation = view.distillation;
    g.distillationRounds.set(distillation.rounds.length);
    g.distillationRunning.set(distillation.running ? 1 : 0);
    g.distillationAccuracy.reset();
    const newestRound = distillation.rounds[0];
    if (newestRound) for (const m of newestRound.models) g.distillationAccuracy.set({ round: String(newestRound.round), model: m.label }, m.accuracy);
    this.setOrAbsent(g.distillationGapClosed, newestRound?.gapClosed ?? null);
  }
}

function createGauges(registers: Registry[]) {
  const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name, help, labelNames, registers });
  // Registered only while their value is known (see setOrAbsent).
  const optional = (name: string, help: string) => new Gauge({ name, help, registers: [] });
  return {
    info: gauge('ringpipe_job_info', 'The job this coordinator runs (value 1)', ['cluster', 'job', 'run_id', 'model', 'mode']),
    phase: gauge('ringpipe_phase', 'Coordinator phase (1 for the current one)', ['phase']),
    epoch: gauge('ringpipe_membership_epoch', 'Current membership epoch'),
    step: gauge('ringpipe_step', 'Newest committed optimizer step'),
    totalSteps: gauge('ringpipe_total_steps', 'Steps the job runs in all'),
    samplesPerSecond: gauge('ringpipe_samples_per_second', 'Training throughput of the cluster (global-batch samples per second)'),
    loss: optional('ringpipe_loss', 'Global-batch loss of the newest step'),
    trainAccuracy: optional('ringpipe_train_accuracy', 'Share of the newest global batch classified right (before the update)'),
    testAccuracy: optional('ringpipe_test_accuracy', 'Test-set accuracy of the final evaluation'),
    stepPartSeconds: gauge('ringpipe_step_part_seconds', 'Time of the newest step by part, mean over members', ['part']),
    busbw: optional('ringpipe_allreduce_busbw_bytes_per_second', 'All-reduce bus bandwidth of the newest step: bytes/time * 2(n-1)/n'),
    inputStall: optional('ringpipe_input_stall_percent', 'Share of the newest step spent waiting for input data, in percent (mean over members; TensorFlow: <5 not input-bound, 5-20 moderately, >20 highly)'),
    inputBound: gauge('ringpipe_input_bound', 'Input-bound verdict of the newest step (1 for the current one)', ['verdict']),
    peers: gauge('ringpipe_peers', 'Peers by status', ['status']),
    peerInfo: gauge('ringpipe_peer_info', 'A peer the coordinator has seen (value 1)', ['node_id', 'hostname', 'address', 'backend', 'role', 'status']),
    peerUp: gauge('ringpipe_peer_up', '1 while the peer is connected, 0 once it is dead or has left', ['node_id']),
    peerStepsPerSecond: gauge('ringpipe_peer_steps_per_second', 'Steps per second of a peer (smoothed)', ['node_id']),
    peerHeartbeat: gauge('ringpipe_peer_last_heartbeat_timestamp_seconds', 'When anything last arrived from the peer (Unix time)', ['node_id']),
    peerMemory: gauge('ringpipe_peer_memory_bytes', 'Resident set size of the peer process', ['node_id']),
    peerStep: gauge('ringpipe_peer_step', 'Newest step the peer reported', ['node_id']),
    checkpointsKept: gauge('ringpipe_checkpoints', 'Checkpoints on the coordinator disk'),
    checkpointStep: optional('ringpipe_checkpoint_last_step', 'Step of the newest checkpoint'),
    checkpointBytes: optional('ringpipe_checkpoint_last_bytes', 'Size of the newest checkpoint'),
    checkpointTime: optional('ringpipe_checkpoint_last_timestamp_seconds', 'When the newest checkpoint was written (Unix time)'),
    pipelineBubble: gauge('ringpipe_pipeline_bubble_ratio', 'Pipeline bubble: measured idle share, and GPipe theory (K-1)/(M+K-1)', ['kind']),
    pipelineStageBubble: gauge('ringpipe_pipeline_stage_bubble_ratio', 'Idle share of each pipeline stage', ['stage', 'replica']),
    distillationRounds: gauge('ringpipe_distillation_rounds', 'Distillation rounds finished in this run folder (the last 20)'),
    distillationRunning: gauge('ringpipe_distillation_running', '1 while a distillation round runs'),
    distillationAccuracy: gauge('ringpipe_distillation_accuracy', 'Test accuracy of the models of the newest distillation round', ['round', 'model']),
    distillationGapClosed: optional('ringpipe_distillation_gap_closed_ratio', 'Share of the accuracy gap between the student alone and the teacher closed by distillation (newest round)'),
  };
}

