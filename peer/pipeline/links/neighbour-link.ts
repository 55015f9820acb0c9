import { PipelineError } from '../errors.js';

/**
 * What crosses the link between two neighbouring stages: activations and their labels forward (one
 * tensor, 'labelled-activation': see labelled-activation.ts; the separate 'activation' and 'labels'
 * kinds serve evaluation and the planner's crossing measurement), gradients of those activations
 * backward. Every tensor is tagged with the mini-batch step and the
 * micro-batch, and a stage always names the tensor it expects next: a neighbour that is out of step
 * is caught at once instead of silently mixing micro-batches.
 */
export type TensorKind = 'activation' | 'labels' | 'labelled-activation' | 'gradient';

export interface TensorTag {
  step: number;
  micro: number;
  kind: TensorKind;
}

export type StageTensor = Float32Array | Int32Array;

/** One end of the link to a neighbouring stage. */
export interface NeighbourLink {
  /** Who is at the other end, for messages. */
  readonly label: string;
  /** Sends a tensor. Resolves once `data` may be reused; sends on one link keep their order. */
  send(tag: TensorTag, data: StageTensor): Promise<void>;
  /**
   * The next tensor from the neighbour, which must be `expected`; rejects after `timeoutMs`. With
   * `into` (of the expected length and dtype) the values are written there and a view of it is
   * returned: a stage reuses its receive buffers instead of touching fresh memory per tensor.
   */
  receive(expected: TensorTag, timeoutMs: number, into?: StageTensor): Promise<StageTensor>;
  /** Whether a whole tensor from the neighbour is already here, waiting for `receive`. */
  hasArrived(): boolean;
  close(reason?: string): void;
}

/** A stage's links: none before the first stage, none after the last. */
export interface StageNeighbours {
  previous?: NeighbourLink;
  next?: NeighbourLink;
}

export function dtypeOfKind(kind: TensorKind): 'float32' | 'int32' {
  return kind === 'labels' ? 'int32' : 'float32';
}

export function describeTag(tag: TensorTag): string {
  return `${tag.kind} of micro-batch ${tag.micro} of step ${tag.step}`;
}

export function checkTag(expected: TensorTag, got: TensorTag, from: string): void {
  if (expected.step !== got.step || expected.micro !== got.micro || expected.kind !== got.kind) {
    throw new PipelineError('desync', `expected the ${describeTag(expected)} from ${from}, got the ${describeTag(got)}: the stages are out of step`);
  }
}

/** The neighbouring stage names it expects as anything but its own dtype is a protocol error. */
export function checkData(expected: TensorTag, data: StageTensor, from: string): void {
  const want = dtypeOfKind(expected.kind);
  const got = data instanceof Float32Array ? 'float32' : 'int32';
  if (want !== got) throw new PipelineError('desync', `the ${describeTag(expected)} from ${from} arrived as ${got}, expected ${want}`);
}
