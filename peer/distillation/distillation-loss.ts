import * as tf from '@tensorflow/tfjs';

/**
 * The knowledge-distillation loss of Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in
 * a Neural Network":
 *
 *   loss = (1 − α) · CE(y, softmax(z_s))  +  α · T² · KL(p_T ‖ softmax(z_s / T))
 *
 * `p_T` is the teacher's softmax at temperature T (given here as dense probabilities, already
 * tempered). The T² factor keeps the soft term's gradients the same size whatever T is: softening
 * by T scales them by 1/T². KL rather than cross-entropy: the two differ by the teacher's entropy,
 * a constant, so the gradients are the same, and KL is 0 when the student matches the teacher.
 * α = 0 is plain hard-label training (the "student alone" baseline).
 */
export interface DistillationLossOptions {
  temperature: number;
  /** Weight of the soft (teacher) term; 1 − alpha weighs the hard labels. In [0, 1]. */
  alpha: number;
  numClasses: number;
}

/** Smallest probability used inside a log: a target of exactly 0 then contributes 0·(finite) = 0. */
const LOG_FLOOR = 1e-30;

export function distillationLoss(
  studentLogits: tf.Tensor,
  labels: tf.Tensor1D,
  teacherProbs: tf.Tensor | undefined,
  options: DistillationLossOptions,
): tf.Scalar {
  const { temperature: t, alpha, numClasses } = options;
  return tf.tidy(() => {
    const hard = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, numClasses), studentLogits) as tf.Scalar;
    if (alpha === 0) return hard;
    if (!teacherProbs) throw new Error('distillation with alpha > 0 needs the teacher soft targets');
    const studentLogProbs = tf.logSoftmax(tf.div(studentLogits, t));
    const teacherLogProbs = tf.log(tf.maximum(teacherProbs, LOG_FLOOR));
    const kl = tf.mean(tf.sum(tf.mul(teacherProbs, tf.sub(teacherLogProbs, studentLogProbs)), -1));
    const soft = tf.mul(kl, t * t);
    return tf.add(tf.mul(hard, 1 - alpha), tf.mul(soft, alpha)) as tf.Scalar;
  });
}
