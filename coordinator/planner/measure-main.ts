/**
 * Child process of the live planner: measures a model (and this machine's loopback link) on the
 * chosen backend and prints the result as one JSON line. A process of its own because measuring
 * keeps a core busy for seconds, which the coordinator's event loop (heartbeats, the dashboard)
 * cannot afford.
 *
 *   node --import tsx coordinator/planner/measure-main.ts '{"model":"mlp","batchSize":128,"optimizer":"adam","backend":"auto"}'
 */
import { selectBackend } from '../../shared/engine/select-backend.js';
import { isBackendFlag } from '../../shared/engine/backend-candidates.js';
import { measureLoopbackLink } from './measure-link.js';
import { measureNamedModel } from './measure-named-model.js';
import { isOptimizerName } from './optimizer-state.js';

export const MEASURED_PREFIX = 'measured ';

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as { model?: string; batchSize?: number; optimizer?: string; backend?: string; repeats?: number };
  const backend = request.backend ?? 'auto';
  if (backend !== 'auto' && !isBackendFlag(backend)) throw new Error(`unknown backend '${backend}'`);
  const optimizer = request.optimizer ?? 'adam';
  if (!isOptimizerName(optimizer)) throw new Error(`unknown optimizer '${optimizer}'`);
  if (!request.model || !request.batchSize) throw new Error('measure-main needs {"model", "batchSize"}');
  await selectBackend(backend === 'auto' ? {} : { force: backend });
  const measurements = await measureNamedModel({ model: request.model, batchSize: request.batchSize, optimizer, ...(request.repeats ? { repeats: request.repeats } : {}) });
  const loopback = await measureLoopbackLink();
  process.stdout.write(`${MEASURED_PREFIX}${JSON.stringify({ measurements, loopback })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  },
);
