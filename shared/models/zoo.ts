import * as tf from '@tensorflow/tfjs';

/**
 * Built-in models. All output logits (no softmax layer): the loss applies softmax itself, and
 * knowledge distillation needs the raw logits to soften with a temperature.
 */
export interface ModelSpec {
  inputShape: number[];
  numClasses: number;
  seed: number;
}

/** A model's name and its layers, not yet built (no weights allocated until they are applied). */
export interface ZooLayers {
  name: string;
  layers: tf.layers.Layer[];
}

type Builder = (spec: ModelSpec) => ZooLayers;

/** Each layer gets its own seed derived from the model seed, so the whole model is reproducible. */
function seeded(spec: ModelSpec) {
  let layerIndex = 0;
  return () => {
    const seed = spec.seed * 1000 + layerIndex++;
    return { kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: 'zeros' as const };
  };
}

/**
 * flatten → dense relu per hidden width (each optionally followed by seeded dropout) → dense logits:
 * the shape every MLP in the zoo shares.
 */
function denseStack(name: string, spec: ModelSpec, hidden: number[], dropoutRate = 0): ZooLayers {
  const init = seeded(spec);
  // Samples that are already vectors (CSV / JSON Lines features) need no flatten (tfjs's wants rank ≥ 2).
  const flat = spec.inputShape.length === 1;
  const layers: tf.layers.Layer[] = flat ? [] : [tf.layers.flatten({ inputShape: spec.inputShape })];
  hidden.forEach((units, i) => {
    layers.push(tf.layers.dense({ units, activation: 'relu', ...(flat && i === 0 ? { inputShape: spec.inputShape } : {}), ...init() }));
    if (dropoutRate > 0) layers.push(tf.layers.dropout({ rate: dropoutRate, seed: spec.seed * 1000 + 101 + i }));
  });
  layers.push(tf.layers.dense({ units: spec.numClasses, ...init() }));
  return { name, layers };
}

const builders: Record<string, { describe: string; build: Builder }> = {
  mlp: {
    describe: 'MLP 784-512-256-10 (≈ 535k parameters)',
    build: (spec) => denseStack('mlp', spec, [512, 256]),
  },
  cnn: {
    describe: 'CNN conv3x3x32-pool-conv3x3x64-pool-fc128-fc10 (≈ 225k parameters)',
    build(spec) {
      const init = seeded(spec);
      return {
        name: 'cnn',
        layers: [
          tf.layers.conv2d({ inputShape: spec.inputShape, filters: 32, kernelSize: 3, activation: 'relu', ...init() }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', ...init() }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 128, activation: 'relu', ...init() }),
          tf.layers.dense({ units: spec.numClasses, ...init() }),
        ],
      };
    },
  },
  // Knowledge distillation (docs/distill.md): Hinton et al.'s MNIST teacher, and a
  // student ≥ 10× smaller.
  'mlp-large': {
    describe: 'MLP 784-1200-1200-10 with dropout 0.5 (≈ 2.4M parameters; the regularised distillation teacher of Hinton et al. 2015)',
    // Dropout as in Hinton et al.'s teacher: a regularised teacher gives soft targets that
    // transfer better (measured: docs/benchmarks.md, distillation). Active only in training.
    // Seeded for reproducible runs; tfjs then repeats one mask per batch row at every step, so
    // each sample gets one of batch-size fixed masks, by its place in the shuffled batch.
    build: (spec) => denseStack('mlp_large', spec, [1200, 1200], 0.5),
  },
  // A pipeline's kind of model (docs/pipeline.md): a stack of equal layers, so a cut at the middle
  // leaves each stage half the work, as stacks of transformer blocks do. The GPipe benchmark's default.
  'mlp-deep': {
    describe: 'MLP 784-1024×6-10 (≈ 6.1M parameters; six equal hidden layers that split evenly into pipeline stages)',
    build: (spec) => denseStack('mlp_deep', spec, Array(6).fill(1024)),
  },
  'mlp-small': {
    describe: 'MLP 784-300-10 (≈ 239k parameters; a distillation student, 10× smaller than mlp-large)',
    build: (spec) => denseStack('mlp_small', spec, [300]),
  },
};

export const ZOO_MODELS = Object.keys(builders);

export function describeZoo(): string {
  return Object.entries(builders)
    .map(([name, b]) => `${name}: ${b.describe}`)
    .join('\n');
}

export function isZooModel(name: string): boolean {
  return Object.hasOwn(builders, name);
}

export function buildZooModel(name: string, spec: ModelSpec): tf.Sequential {
  return tf.sequential(zooLayers(name, spec));
}

/**
 * The zoo model's layers, unbuilt: a pipeline stage builds only its own (each layer's initializer is
 * seeded by its position, so they come out as in the whole model).
 */
export function zooLayers(name: string, spec: ModelSpec): ZooLayers {
  const entry = builders[name];
  if (!entry) throw new Error(`unknown model '${name}': choose one of ${ZOO_MODELS.join(', ')} or give the path of a model.json`);
  return entry.build(spec);
}
