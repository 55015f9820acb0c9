/**
 * The one set of distillation defaults: the round schema (and so `npm run distill`, the dashboard
 * and any spec file) and `npm run bench:distill` all read them here, so running a round with no
 * settings runs what the benchmark measured. They were chosen on a validation split, never on the
 * test set (docs/benchmarks.md, "How the settings were chosen"; `npm run bench:distill-screen`).
 */
export const DISTILL_DEFAULTS = {
  student: 'mlp-small',
  topK: 10,
  temperature: 16,
  alpha: 0.95,
  /** The students' budget: the first N training images… */
  transferSamples: 2000,
  /** …seen in this many optimizer steps of one global batch each. */
  steps: 1880,
  batchSize: 128,
  optimizer: 'adam',
  learningRate: 0.001,
  seed: 42,
} as const;

/**
 * The validation split of MNIST's 60,000 training images: the last 5,000. Settings are screened on
 * it; the benchmark's teacher trains on the images before it, and the transfer set (the first N
 * images) never reaches it, so neither the teacher nor a student ever sees a validation image.
 */
export const VALIDATION_SPLIT = { start: 55_000, end: 60_000 } as const;

/** The benchmark's teacher: zoo `mlp-large` trained on the images before the validation split. */
export const TEACHER_RECIPE = {
  model: 'mlp-large',
  epochs: 3,
  seed: 1,
  batchSize: 128,
  optimizer: 'adam',
  learningRate: 0.001,
  trainImages: VALIDATION_SPLIT.start,
  /** Epochs whose checkpoints are averaged (their logits) into the teacher; one epoch: a single model. */
  ensembleEpochs: [3],
} as const;
