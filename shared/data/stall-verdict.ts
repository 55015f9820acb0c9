/**
 * How long the trainer waits for its next batch, as a share of step time. The verdicts and
 * thresholds are those of TensorFlow's input-pipeline analyser. (No imports: the dashboard page
 * uses it in the browser.)
 */
export const INPUT_BOUND_VERDICTS = ['not input-bound', 'moderately input-bound', 'highly input-bound'] as const;
export type InputBoundVerdict = (typeof INPUT_BOUND_VERDICTS)[number];

export function classifyStall(stallPercent: number): InputBoundVerdict {
  if (stallPercent < 5) return 'not input-bound';
  if (stallPercent <= 20) return 'moderately input-bound';
  return 'highly input-bound';
}
