import * as tf from '@tensorflow/tfjs';

/** How a model's output layer is meant to be read. Zoo models output logits. */
export type OutputKind = 'logits' | 'probabilities';

/** The output kind of a model: probabilities when its last layer ends in a softmax. */
export function outputKindOf(model: tf.LayersModel): OutputKind {
  const last = model.layers[model.layers.length - 1];
  const activation = (last?.getConfig() as { activation?: string } | undefined)?.activation;
  return activation === 'softmax' ? 'probabilities' : 'logits';
}

/** Mean cross-entropy of integer class labels against the model's output. */
export function crossEntropy(output: tf.Tensor, labels: tf.Tensor1D, numClasses: number, kind: OutputKind): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, numClasses);
    if (kind === 'logits') return tf.losses.softmaxCrossEntropy(oneHot, output) as tf.Scalar;
    const clipped = tf.clipByValue(output, 1e-7, 1);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.log(clipped)), -1))) as tf.Scalar;
  });
}
