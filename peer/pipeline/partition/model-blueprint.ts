import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { zooLayers, type ModelSpec } from '../../../shared/models/zoo.js';
import { PipelineError } from '../errors.js';
import { checkBalance, type Balance } from './balance.js';
import { StageModule } from './stage-module.js';

type Layer = tf.layers.Layer;

/**
 * A zoo model described without building it: its layers' configs and the shape between each pair.
 * A pipeline stage builds only its own layers from it, so a peer allocates, initialises and holds
 * its stage's weights only. Each zoo layer's initializer is seeded by the layer's position, so a
 * stage's fresh weights are those of the same layers in the whole seeded model.
 *
 * Layers get names from their position (`dense_5`), not tfjs's per-process counters: every stage's
 * weight names then agree with the topology stage 0 sends for the joined checkpoint.
 */
export class ModelBlueprint {
  private constructor(
    readonly modelName: string,
    private readonly makeLayers: () => Layer[],
    /** Shape of one sample entering layer i (index = layer count: the model's output). */
    readonly shapes: readonly (readonly number[])[],
  ) {}

  static forZoo(name: string, spec: ModelSpec): ModelBlueprint {
    const make = (): Layer[] => {
      const layers = zooLayers(name, spec).layers;
      layers.forEach((layer, i) => (layer.name = `${layer.getClassName().toLowerCase()}_${i}`));
      return layers;
    };
    const shapes: number[][] = [[...spec.inputShape]];
    for (const layer of make()) {
      const out = layer.computeOutputShape([null, ...shapes[shapes.length - 1]!]);
      if (Array.isArray(out[0])) throw new PipelineError('not-sequential', `layer '${layer.name}' has several outputs`);
      shapes.push((out as (number | null)[]).slice(1) as number[]);
    }
    return new ModelBlueprint(zooLayers(name, spec).name, make, shapes);
  }

  get layerCount(): number {
    return this.shapes.length - 1;
  }

  /** Builds stage `index` of `balance`: only its layers get weights (seeded as in the whole model). */
  buildStage(balance: Balance, index: number): StageModule {
    checkBalance(balance, this.layerCount);
    if (index < 0 || index >= balance.length) throw new PipelineError('usage', `stage index ${index} is outside a pipeline of ${balance.length} stages`);
    const first = balance.slice(0, index).reduce((a, b) => a + b, 0);
    const layers = this.makeLayers().slice(first, first + balance[index]!);
    // Applying the layers to a symbolic input builds them (allocates and initialises their weights).
    let x = tf.input({ shape: [...this.shapes[first]!] });
    for (const layer of layers) x = layer.apply(x) as tf.SymbolicTensor;
    return new StageModule(index, layers, first, [...this.shapes[first]!], [...this.shapes[first + layers.length]!]);
  }

  /** The last layer's activation decides how the loss reads the output (as outputKindOf does). */
  get outputActivation(): string | undefined {
    const layers = this.makeLayers();
    return (layers[layers.length - 1]!.getConfig() as { activation?: string }).activation;
  }

  /**
   * The whole model's topology as `model.json` holds it (`modelTopology`), from the unbuilt layers:
   * what `tf.Sequential.toJSON` writes, without allocating a weight. The weights manifest is the
   * stages' business (each names and shapes its own).
   */
  topology(): object {
    const layers = this.makeLayers().map((layer) => ({ className: layer.getClassName(), config: layer.getConfig() }));
    const updated = {
      className: 'Sequential',
      config: { name: this.modelName, layers },
      kerasVersion: `tfjs-layers ${tf.version_layers}`,
      backend: 'TensorFlow.js',
    };
    // toJSON only reads updatedConfig() and converts the keys to Keras's snake_case: borrow it.
    return tf.Sequential.prototype.toJSON.call({ updatedConfig: () => updated } as unknown as tf.Sequential, undefined, false) as object;
  }

  /** Same for every peer building the same job's model: the coordinator compares it across peers. */
  layoutHash(): string {
    return createHash('sha256').update(JSON.stringify(this.topology())).digest('hex').slice(0, 32);
  }
}
