import { authorizationHeaders } from '../access-token.js';
import { byId, fill, h } from '../dom.js';

/** What `GET /api/plan` answers (coordinator/planner/live-plan.ts), as much of it as the panel shows. */
interface PlanReply {
  status?: 'ready' | 'measuring' | 'failed' | 'no-peers';
  message?: string;
  error?: string;
  text?: string;
  peers?: number;
  measuredAt?: string;
  plan?: { recommendation?: { summary?: string } };
}

const POLL_MS = 2_000;
/** Measuring a model takes seconds to a minute; stop asking after this. */
const GIVE_UP_MS = 6 * 60_000;

/**
 * The capacity planner for the running cluster: on demand (measuring the model costs a core for a
 * while), the job's model planned on the peers connected now — recommendation first, then the
 * planner's full text.
 */
export class PlanPanel {
  private busy = false;

  constructor() {
    const button = h('button', { type: 'button' }, 'Plan this cluster');
    button.addEventListener('click', () => void this.ask(button));
    fill(byId('plan'), h('p', { class: 'muted small' }, 'Should this model train data-parallel or as a pipeline on these peers? The planner measures the model once, then plans it on the peers connected now.'), button);
  }

  private async ask(button: HTMLButtonElement): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    button.disabled = true;
    const started = Date.now();
    try {
      for (;;) {
        const reply = await fetchPlan();
        if (reply.status === 'measuring' && Date.now() - started < GIVE_UP_MS) {
          byId('plan-summary').textContent = reply.message ?? 'measuring…';
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          continue;
        }
        this.show(reply);
        return;
      }
    } finally {
      this.busy = false;
      button.disabled = false;
    }
  }

  private show(reply: PlanReply): void {
    const output = byId('plan-output');
    if (reply.status !== 'ready' || !reply.text) {
      byId('plan-summary').textContent = '';
      fill(output, h('p', { class: 'error' }, reply.message ?? reply.error ?? 'no plan'));
      return;
    }
    byId('plan-summary').textContent = `${reply.peers ?? 0} peers · model measured ${reply.measuredAt ? new Date(reply.measuredAt).toLocaleTimeString() : ''}`;
    fill(output, h('p', { class: 'plan-recommendation' }, reply.plan?.recommendation?.summary ?? ''), h('pre', { class: 'plan-text' }, reply.text));
  }
}

async function fetchPlan(): Promise<PlanReply> {
  try {
    const response = await fetch('/api/plan', { headers: authorizationHeaders() });
    return (await response.json().catch(() => ({ error: `HTTP ${response.status}` }))) as PlanReply;
  } catch (error) {
    return { status: 'failed', message: `the coordinator does not answer (${(error as Error).message})` };
  }
}
