/**
 * Writes a deep, uniform MLP as a model.json for `npm run bench:pipeline -- --model DIR`: the kind of
 * model a pipeline is for (many layers of equal cost, so a cut can leave each stage about half the
 * work). The default 6 × 1024 is the zoo's `mlp-deep` (bench:pipeline's default model); this script
 * writes other widths and depths for experiments.
 *
 *   npx tsx scripts/bench/pipeline-deep-model.ts [--width 1024] [--layers 6] [--out /tmp/deep-mlp]
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { saveModel } from '../../shared/models/file-io.js';

const { values } = parseArgs({ options: { width: { type: 'string', default: '1024' }, layers: { type: 'string', default: '6' }, out: { type: 'string', default: '/tmp/deep-mlp' }, seed: { type: 'string', default: '42' } } });
const width = Number(values.width);
const layers = Number(values.layers);
const seed = Number(values.seed);
if (!Number.isInteger(width) || width < 1 || !Number.isInteger(layers) || layers < 1) throw new Error('--width and --layers take positive whole numbers');
await tf.setBackend('cpu');
let index = 0;
const init = () => ({ kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + index++ }), biasInitializer: 'zeros' as const });
const model = tf.sequential({
  name: `deep_mlp_${layers}x${width}`,
  layers: [
    tf.layers.flatten({ inputShape: [28, 28, 1] }),
    ...Array.from({ length: layers }, () => tf.layers.dense({ units: width, activation: 'relu', ...init() })),
    tf.layers.dense({ units: 10, ...init() }),
  ],
});
const file = await saveModel(model, values.out);
console.log(`${file}: 784-${Array(layers).fill(width).join('-')}-10, ${model.countParams().toLocaleString('en')} weights`);
