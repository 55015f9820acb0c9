import type { Logger } from '../../../shared/log/logger.js';
import type { DashboardModel } from '../model/dashboard-model.js';
import type { DashboardSource } from '../model/dashboard-source.js';
import { CONTROL_ACTIONS, type ControlAction } from '../model/view-types.js';

export interface ControlResult {
  status: 200 | 404 | 409 | 501;
  body: { message: string } | { error: string };
}

export function isControlAction(name: string): name is ControlAction {
  return (CONTROL_ACTIONS as readonly string[]).includes(name);
}

/**
 * The dashboard's buttons, carried out through the coordinator's own controls. A control that
 * cannot act now says why (409), with the same reason the page shows beside the disabled button.
 */
export function runControl(action: ControlAction, source: DashboardSource, model: DashboardModel, who: string, log: Logger): ControlResult {
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
      result = { status: 501, body: { error: model.view().distillation.reason ?? 'distillation rounds are not available' } };
      break;
  }
  log.info({ action, who, status: result.status }, `dashboard control: ${action}`);
  return result;
}
