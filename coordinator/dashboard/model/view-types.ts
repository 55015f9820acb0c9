/**
 * The JSON the dashboard page receives (`GET /api/view`, and the `/live` websocket feed). Shared by
 * the server (Node) and the page (browser): plain data types only, no imports.
 * Times are milliseconds since the Unix epoch; null means "not known (yet)".
 */

export type PeerStatus = 'joining' | 'preparing' | 'ready' | 'training' | 'unfit' | 'dead' | 'left';

export interface PeerRow {
  nodeId: string;
  hostname: string;
  /** The address the coordinator sees the peer at. */
  address: string;
  backend: string | null;
  /** "rank 1 of 2", "stage 0", "waiting" — what it does in the current membership epoch. */
  role: string;
  rank: number | null;
  stage: number | null;
  status: PeerStatus;
  /** Why it is dead, left or unfit. */
  detail: string | null;
  step: number | null;
  stepsPerSecond: number | null;
  /** When anything (data, ping, pong) last arrived on its link. */
  lastHeartbeat: number | null;
  /** Resident set size of the peer process. */
  memoryBytes: number | null;
  /** Since when the status holds (the time of death for a dead peer). */
  since: number;
}

export interface TopologyMemberView {
  nodeId: string;
  rank: number;
  stage: number | null;
  /** Pipeline + data parallel: the member's pipeline replica (absent with one replica). */
  replica?: number;
  /** Connected; dead (its link closed while the job ran); or left after the job ended. */
  state: 'alive' | 'dead' | 'left';
}

export interface TopologyView {
  epoch: number;
  /** A ring (data-parallel) or a chain of stages (pipeline). */
  kind: 'ring' | 'pipeline';
  members: TopologyMemberView[];
}

/** One optimizer step of the whole cluster. */
export interface StepPoint {
  /** Position in the series since the coordinator started: the page skips points it already has. */
  seq: number;
  step: number;
  time: number;
  /** Mean loss over the global batch. */
  loss: number;
  /** Share of the global batch classified right (training batch, before the update). */
  accuracy: number | null;
  samplesPerSecond: number | null;
  /** Mean over the members of each part of the step time. */
  computeMs: number | null;
  communicationMs: number | null;
  dataWaitMs: number | null;
  /** Mean over the members of the step's data wait as a percentage of its time (TensorFlow's input-bound measure). */
  stallPercent: number | null;
  /** All-reduce bus bandwidth (nccl-tests' busbw): bytes/time · 2(n−1)/n. Null with one peer. */
  busbwBytesPerSecond: number | null;
  worldSize: number;
  /** Some members' reports were lost with them. */
  partial: boolean;
}

export interface CheckpointRow {
  step: number;
  savedAt: string;
  /** Sum of the file sizes in its manifest. */
  bytes: number;
  files: number;
  /** sha256 of manifest.json, which holds the sha256 of every file: one checksum for the whole checkpoint. */
  manifestSha256: string;
  downloadPath: string;
}

export interface GanttSpan {
  kind: 'forward' | 'backward' | 'idle' | 'update' | 'all-reduce' | 'data';
  micro: number | null;
  /** From the start of the mini-batch on the earliest stage. */
  startMs: number;
  durationMs: number;
}

export interface PipelineView {
  stages: number;
  microBatches: number;
  schedule: string;
  /** The mini-batch shown: the newest one every stage has finished. */
  step: number;
  durationMs: number;
  rows: { stage: number; replica: number; spans: GanttSpan[]; bubble: number | null }[];
  /** Mean idle share over stages, measured over the recorded steps. */
  measuredBubble: number | null;
  /** (K − 1)/(M + K − 1). */
  theoreticalBubble: number;
}

/** One model of a finished distillation round, as its report measured it. */
export interface DistilledModelView {
  /** "teacher", "distilled student", "student alone". */
  label: string;
  path: string;
  parameters: number;
  bytesOnDisk: number;
  msPerSample: number;
  accuracy: number;
  trainSeconds: number | null;
}

export interface DistillationRoundView {
  round: number;
  startedAt: string;
  finishedAt: string;
  teacher: string;
  student: string;
  /** Top-k, temperature, alpha, steps… in one line. */
  settings: string;
  models: DistilledModelView[];
  /** Share of the accuracy gap between the student alone and the teacher that distillation closed. */
  gapClosed: number | null;
  notes: string[];
}

export interface DistillationView {
  /** Does this coordinator run distillation rounds at all. */
  available: boolean;
  running: { round: number; teacher: string; student: string; startedAt: string; stage: string; detail: string; step: number | null; totalSteps: number | null } | null;
  lastFailure: { round: number; message: string } | null;
  /** Finished rounds, newest first. */
  rounds: DistillationRoundView[];
  /** What the start form proposes as teacher: the last round's student, else this run's newest checkpoint. */
  suggestedTeacher: string | null;
}

/** What the page sends to start a round (the coordinator validates it with the rounds' own schema). */
export interface DistillRequest {
  teacher: string;
  student: string;
  maxSteps?: number;
  epochs?: number;
}

export interface ControlState {
  enabled: boolean;
  /** Why it is disabled. */
  reason: string | null;
}

export interface ControlsView {
  pause: ControlState;
  resume: ControlState;
  checkpoint: ControlState;
  distill: ControlState;
}

export interface JobView {
  cluster: string;
  jobName: string;
  runId: string;
  model: string;
  batchSize: number;
  mode: string;
  phase: string;
  detail: string;
  epoch: number;
  step: number;
  totalSteps: number;
  samplesPerSecond: number;
  lastLoss: number | null;
  testAccuracy: number | null;
  /** Where peers connect. */
  address: string | null;
}

export interface DashboardView {
  job: JobView;
  peers: PeerRow[];
  topology: TopologyView;
  checkpoints: CheckpointRow[];
  /** Null until a pipeline reports its timelines (data-parallel jobs have none). */
  pipeline: PipelineView | null;
  distillation: DistillationView;
  controls: ControlsView;
  serverTime: number;
}

/** Server → page over the `/live` websocket. A snapshot first, then updates with the new points only. */
export type FeedMessage = { type: 'snapshot'; view: DashboardView; points: StepPoint[] } | { type: 'update'; view: DashboardView; points: StepPoint[] };

export const CONTROL_ACTIONS = ['pause', 'resume', 'checkpoint', 'distill'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];
