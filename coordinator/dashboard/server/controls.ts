import { JobValidationError } from '../../../shared/job/schema.js';
import type { Logger } from '../../../shared/log/logger.js';
import type { DashboardModel } from '../model/dashboard-model.js';
import type { DashboardSource } from '../model/dashboard-source.js';
import { CONTROL_ACTIONS, type ControlAction } from '../model/view-types.js';

export interface ControlResult {
  status: 200 | 400 | 409;
  body: { message: string } | { error: string };
}

export function isControlAction(name: string): name is ControlAction {
  return (CONTROL_ACTIONS as readonly string[]).includes(name);
}

/**
 * The dashboard's buttons, carried out through the coordinator's own controls. A control that
 * cannot act now says why (409), with the same reason the page shows beside the disabled button;
 * a distillation request the rounds' schema rejects names every bad field (400).
 */
export async function runControl(action: ControlAction, request: unknown, source: DashboardSource, model: DashboardModel, who: string, log: Logger): Promise<ControlResult> {
  const reason = `${action} from the dashboard (${who})`;
  const refused = (): ControlResult => ({ status: 409, body: { error: model.view().controls[action].reason ?? `cannot ${action} now` } });
  let result: ControlResult;
  switch (action) {
    case 'pause':
      result = source.pause(reason) ? { status: 200, body: { message: 'pausing: training stops after the next step every peer agrees on' } } : refused();
      break;
    case 'resume':
      result = source.resume(reason) ? { status: 200, body: { message: 'resuming: the next membership epoch starts now' } } : refused();
      break;
    case 'checkpoint':
      result = source.requestCheckpoint(reason) ? { status: 200, body: { message: 'checkpoint requested: rank 0 uploads after its current step' } } : refused();
      break;
    case 'distill':
      result = await startRound(request, source, model);
      break;
  }
  log.info({ action, who, status: result.status }, `dashboard control: ${action}`);
  return result;
}

async function startRound(request: unknown, source: DashboardSource, model: DashboardModel): Promise<ControlResult> {
  const control = model.view().controls.distill;
  if (!source.distillation || !control.enabled) return { status: 409, body: { error: control.reason ?? 'no distillation round can start now' } };
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return { status: 400, body: { error: 'send the round as a JSON object, e.g. {"teacher": "previous", "student": "mlp-small"}' } };
  }
  let started: ReturnType<NonNullable<DashboardSource['distillation']>['start']>;
  try {
    started = source.distillation.start(request as Parameters<NonNullable<DashboardSource['distillation']>['start']>[0]);
  } catch (error) {
    return error instanceof JobValidationError ? { status: 400, body: { error: error.message } } : { status: 409, body: { error: (error as Error).message } };
  }
  // The report comes much later, through the state; a failure shows there as the last failure.
  started.report.catch(() => {});
  try {
    const round = await Promise.race([started.round, started.report.then((report) => report.round)]);
    return { status: 200, body: { message: `distillation round ${round} started` } };
  } catch (error) {
    return { status: 409, body: { error: `the round failed at once: ${(error as Error).message}` } };
  }
}
