/**
 * What a round produced, for the table, report.json and the dashboard: the teacher, the distilled
 * student and (when trained) the same student alone on hard labels with the same budget.
 */
export type ModelRole = 'teacher' | 'student' | 'student-alone';

export interface ModelFigures {
  role: ModelRole;
  /** Where the model came from (teacher) or where it was saved (students). */
  path: string;
  parameters: number;
  /** model.json + weights.bin. */
  bytesOnDisk: number;
  /** Inference time per sample, with `inferenceBatch` samples per call, on `backend` of `measuredBy`. */
  msPerSample: number;
  inferenceBatch: number;
  backend: string;
  measuredBy: string;
  accuracy: number;
  testLoss: number;
  /** Students: wall-clock training seconds (slowest rank). */
  trainSeconds?: number;
}

export interface RoundReport {
  round: number;
  startedAt: string;
  finishedAt: string;
  dir: string;
  teacher: string;
  student: string;
  /** A note when a softmax output was removed to get logits. */
  notes: string[];
  settings: {
    topK: number;
    temperature: number;
    alpha: number;
    steps: number;
    batchSize: number;
    transferSamples: number;
    optimizer: string;
    learningRate: number;
    seed: number;
    peers: string[];
  };
  softTargets: { file: string; bytes: number; bytesPerSample: number; cached: boolean; seconds: number };
  models: ModelFigures[];
  /**
   * (distilled − alone) / (teacher − alone) in test accuracy: the share of the gap between the
   * student trained alone and the teacher that distillation closed. Null without a baseline or
   * when the student alone is not below the teacher.
   */
  gapClosed: number | null;
}

/** (distilled − alone) / (teacher − alone), or null when it is not defined. */
export function gapClosed(teacher: number, distilled: number, alone: number | undefined): number | null {
  if (alone === undefined || teacher <= alone) return null;
  return (distilled - alone) / (teacher - alone);
}

const ROLE_LABEL: Record<ModelRole, string> = { teacher: 'teacher', student: 'distilled student', 'student-alone': 'student alone' };

/** The round's table, nccl-tests style: every figure on one line per model, units in the header. */
export function formatReportTable(report: RoundReport): string {
  const header = ['model', 'parameters', 'size on disk', 'ms/sample', 'test accuracy', 'train s'];
  const rows = report.models.map((m) => [
    ROLE_LABEL[m.role],
    m.parameters.toLocaleString('en-US'),
    formatBytes(m.bytesOnDisk),
    m.msPerSample.toFixed(4),
    `${(m.accuracy * 100).toFixed(2)}%`,
    m.trainSeconds === undefined ? '-' : m.trainSeconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const s = report.settings;
  const measured = report.models[0];
  const lines = [
    `round ${report.round}: teacher ${report.teacher} → student ${report.student}`,
    `  top-${s.topK} soft targets at T = ${s.temperature}, alpha = ${s.alpha}; students: ${s.steps} steps × batch ${s.batchSize} on the first ${s.transferSamples} training samples, ${s.optimizer} lr ${s.learningRate}, seed ${s.seed}, ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}`,
    ...report.notes.map((note) => `  note: ${note}`),
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    measured ? `inference timed with ${measured.inferenceBatch} sample${measured.inferenceBatch === 1 ? '' : 's'} per call on ${measured.backend} (${measured.measuredBy})` : '',
    report.gapClosed === null ? 'gap closed: n/a (no baseline, or the student alone is not below the teacher)' : `gap closed: ${(report.gapClosed * 100).toFixed(1)}% of the accuracy gap between the student alone and the teacher`,
  ];
  return lines.filter((l, i) => l !== '' || i > 0).join('\n');
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
