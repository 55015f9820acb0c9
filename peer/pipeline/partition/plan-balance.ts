import type * as tf from '@tensorflow/tfjs';
import { profileLayers, type LayerProfile, type ProfileOptions } from '../../../shared/profiling/layer-profile.js';
import { PipelineError } from '../errors.js';
import { balanceByParameters, balanceByTime, checkBalance, parseBalance, type Balance } from './balance.js';
import { sequentialLayers } from './sequential-layers.js';

export type BalanceRule = 'parameters' | 'time' | Balance;

export interface BalancePlan {
  balance: Balance;
  rule: 'parameters' | 'time' | 'explicit';
  /** The per-layer measurements, when balanced by time. */
  profile?: LayerProfile[];
}

/**
 * Decides the layers of each stage, once, for the whole pipeline (stages must agree): by parameter
 * count, by profiled time, or as given (`"3,2"` or `[3, 2]`). Balancing by time profiles on the
 * caller's machine: run it where the stages will run, or on a machine like theirs.
 */
export function planBalance(model: tf.LayersModel, stages: number, rule: BalanceRule | string, profileOptions: ProfileOptions = {}): BalancePlan {
  const layers = sequentialLayers(model);
  if (rule === 'parameters') return { rule, balance: balanceByParameters(layers.map((l) => l.countParams()), stages) };
  if (rule === 'time') {
    const profile = profileLayers(layers, model.inputs[0]!.shape.slice(1) as number[], profileOptions);
    return { rule, balance: balanceByTime(profile, stages), profile };
  }
  const balance = typeof rule === 'string' ? parseBalance(rule) : rule;
  checkBalance(balance, layers.length);
  if (balance.length !== stages) throw new PipelineError('usage', `balance [${balance.join(', ')}] has ${balance.length} stages, the pipeline ${stages}`);
  return { rule: 'explicit', balance };
}
