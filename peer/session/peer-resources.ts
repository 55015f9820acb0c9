import type { ClusterJob } from '../../coordinator/job/cluster-job.js';
import { TRAJECTORY_FIELDS } from '../../coordinator/job/cluster-job.js';
import { openJobData, type JobData } from '../../shared/data/open-dataset.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { describeSelection, selectBackend } from '../../shared/engine/select-backend.js';
import type { BackendFlag } from '../../shared/engine/backend-candidates.js';
import type { Logger } from '../../shared/log/logger.js';
import { stageModelSource, type StageModelSource } from './pipeline/stage-model-source.js';
import { TrainingState } from './training-state.js';

export interface PreparedJob {
  backend: BackendFlag;
  /** The job's dataset, opened: the pipelines the session and the final evaluation read. */
  data: JobData;
  /** Data-parallel jobs: the whole model and optimizer. Pipeline jobs: none (see `stages`). */
  state: TrainingState | undefined;
  /** Pipeline jobs: each stage builds only its own layers from this (peer/session/pipeline/). */
  stages?: StageModelSource;
  /** What the coordinator compares across peers (same model and optimizer). */
  layout: { hash: string; elements: number };
}

/**
 * What a peer process keeps across coordinator sessions: the tensor backend, the dataset and the
 * model. A peer that reconnects does not reload its data or rebuild its model for the same job. Its
 * weights are kept when it rejoins the same run (a network blip: its last committed step is still
 * a valid state of that run) and reset for a new run (a restarted coordinator decides the state).
 */
export class PeerResources {
  private backend: BackendFlag | undefined;
  private data: { key: string; value: JobData } | undefined;
  /** MNIST stays loaded across jobs (47 MB, read once). */
  private mnist: { train: ImageDataset; test: ImageDataset } | undefined;
  private state: { key: string; value: TrainingState; runId: string } | undefined;

  constructor(
    private readonly log: Logger,
    /** `--backend` on the peer's command line wins over the job's (machines differ). */
    private readonly backendOverride?: BackendFlag,
  ) {}

  async prepare(job: ClusterJob, runId: string): Promise<PreparedJob> {
    const wanted = this.backendOverride ?? (job.backend === 'auto' ? undefined : job.backend);
    if (this.backend === undefined || (wanted !== undefined && wanted !== this.backend)) {
      const selection = await selectBackend(wanted ? { force: wanted } : {});
      this.log.info(describeSelection(selection), `tensor backend: ${selection.flag}`);
      if (this.backend !== undefined && this.backend !== selection.flag) this.dropState();
      this.backend = selection.flag;
    }
    const dataKey = JSON.stringify(job.dataset);
    if (this.data?.key !== dataKey) {
      const value = await openJobData(job.dataset, this.mnist ? { mnist: this.mnist } : {});
      if (value.images) this.mnist = value.images;
      this.data = { key: dataKey, value };
      this.log.info({ dataset: value.name, trainSamples: value.trainCount, testSamples: value.testCount, inputShape: value.inputShape, numClasses: value.numClasses }, 'dataset opened');
    }
    if (job.mode === 'pipeline') {
      // A stage holds only its layers: building the whole model here would defeat the split.
      this.dropState();
      const stages = await stageModelSource(job, this.data.value);
      return { backend: this.backend, data: this.data.value, state: undefined, stages, layout: stages.layout };
    }
    const key = JSON.stringify(TRAJECTORY_FIELDS.map((field) => job[field]));
    if (this.state?.key !== key) {
      this.dropState();
      this.state = { key, runId, value: await createState(job, this.data.value) };
    } else if (this.state.runId !== runId) {
      await this.state.value.resetToInitial();
      this.state.runId = runId;
    }
    return { backend: this.backend, data: this.data.value, state: this.state.value, layout: this.state.value.layout };
  }

  dispose(): void {
    this.dropState();
  }

  private dropState(): void {
    this.state?.value.dispose();
    this.state = undefined;
  }
}

/** The model for the job's data; a model that cannot take the data's samples says so in the job's terms. */
async function createState(job: ClusterJob, data: JobData): Promise<TrainingState> {
  try {
    return await TrainingState.create(job, data);
  } catch (error) {
    const shape = `[${data.inputShape.join(', ')}]`;
    const hint = data.inputShape.length === 1 ? ' Feature vectors (CSV, JSON Lines) need a dense model: the zoo\'s "mlp" family, or a model file taking that shape.' : '';
    throw new Error(`model "${job.model}" cannot train on ${data.name} (samples of shape ${shape}, ${data.numClasses} classes): ${(error as Error).message}${hint}`, { cause: error });
  }
}
