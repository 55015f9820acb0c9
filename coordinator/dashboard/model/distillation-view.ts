import type { DistillationView as RoundsState } from '../../distillation/distillation-rounds.js';
import type { RoundReport } from '../../distillation/round-report.js';
import type { DistillationRoundView, DistillationView } from './view-types.js';

const ROLE_LABEL = { teacher: 'teacher', student: 'distilled student', 'student-alone': 'student alone' } as const;

/**
 * The distillation panel from the coordinator's distillation state (`state.distillation`, kept by
 * `coordinator/distillation/`): the round in progress, the last failure, and every finished round's
 * report — the same figures as the `npm run distill` table — newest first.
 */
export function distillationView(state: RoundsState | undefined, available: boolean, newestCheckpoint: string | undefined): DistillationView {
  const reports = state?.reports ?? [];
  const running = state?.running;
  return {
    available,
    running: running
      ? {
          round: running.round,
          teacher: running.teacher,
          student: running.student,
          startedAt: running.startedAt,
          stage: running.progress.stage,
          detail: running.progress.detail,
          step: running.progress.step ?? null,
          totalSteps: running.progress.totalSteps ?? null,
        }
      : null,
    lastFailure: state?.lastFailure ?? null,
    rounds: reports.map(roundView).reverse(),
    suggestedTeacher: reports.length > 0 ? 'previous' : (newestCheckpoint ?? null),
  };
}

function roundView(report: RoundReport): DistillationRoundView {
  const s = report.settings;
  return {
    round: report.round,
    startedAt: report.startedAt,
    finishedAt: report.finishedAt,
    teacher: report.teacher,
    student: report.student,
    settings: `top-${s.topK} at T = ${s.temperature}, alpha ${s.alpha}; ${s.steps} steps × batch ${s.batchSize} on ${s.transferSamples} samples, ${s.optimizer} lr ${s.learningRate}, ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}`,
    models: report.models.map((m) => ({
      label: ROLE_LABEL[m.role],
      path: m.path,
      parameters: m.parameters,
      bytesOnDisk: m.bytesOnDisk,
      msPerSample: m.msPerSample,
      accuracy: m.accuracy,
      trainSeconds: m.trainSeconds ?? null,
    })),
    gapClosed: report.gapClosed,
    notes: report.notes,
  };
}
