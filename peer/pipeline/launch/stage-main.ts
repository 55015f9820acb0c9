/**
 * A pipeline stage process started by launchStages: reads the job from RINGPIPE_PIPELINE_JOB, joins
 * its neighbours and trains. Exits 0 when every run is done; on failure tells the launcher why.
 */
import { formatIssues } from '../../../shared/job/schema.js';
import { tellLauncher } from './join-from-launcher.js';
import { PIPELINE_JOB_ENV, pipelineJobSchema, type PipelineJob } from './pipeline-job.js';
import { runLaunchedStage } from './run-launched-stage.js';

export function jobFromEnv(env: NodeJS.ProcessEnv = process.env): PipelineJob {
  const text = env[PIPELINE_JOB_ENV];
  if (!text) throw new Error(`${PIPELINE_JOB_ENV} must hold the pipeline job as JSON`);
  const parsed = pipelineJobSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`invalid pipeline job:\n${formatIssues(parsed.error).join('\n')}`);
  return parsed.data;
}

/** Runs a stage and exits: 0 when done, 1 (after telling the launcher) on failure. */
export function stageMain(onStep?: (run: number, step: number) => void): void {
  const run = async () => runLaunchedStage(jobFromEnv(), { cluster: 'ringpipe-pipeline', ...(onStep ? { onStep } : {}) });
  run().then(
    () => process.exit(0),
    (error: unknown) => {
      tellLauncher({ ringpipe: 'failed', message: (error as Error).message });
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(1);
    },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) stageMain();
