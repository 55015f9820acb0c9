/**
 * The capacity planner on the dashboard of a running cluster (issue #11): a real coordinator process
 * with its dashboard and two real peer processes on loopback; `GET /api/plan` measures the job's model
 * once (in a child process, 202 meanwhile) and answers with a plan for the peers connected now.
 * The job needs three peers, so the two wait without training and the test stays light.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterHarness } from './fixtures/cluster-harness.js';

const TOKEN = 'plan-test-token-0123456789';
const harness = new ClusterHarness();
afterAll(() => harness.stopAll());

interface PlanBody {
  status?: string;
  message?: string;
  peers?: number;
  text?: string;
  plan?: { model: { parameters: number }; cluster?: { peers: { name: string; host: string }[] }; recommendation: { mode: string; summary: string; reasons: string[] } };
}

describe('planner on the dashboard', () => {
  it('GET /api/plan answers with a plan for the connected peers', async () => {
    const { child, port } = await harness.coordinator(['--dashboard-port', '0', '--min-peers', '3', '--max-peers', '3'], { env: { RINGPIPE_DASHBOARD_TOKEN: TOKEN } });
    const [, url] = await child.waitForLine(/^dashboard (http:\/\/[^/]+)\//, 10_000);
    const get = async (): Promise<{ status: number; body: PlanBody }> => {
      const response = await fetch(`${url}/api/plan`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: response.status, body: (await response.json()) as PlanBody };
    };
    const first = await get();
    expect(first.status).toBe(202);
    expect(first.body.status).toBe('measuring');
    harness.peer(port);
    harness.peer(port);
    let answer: { status: number; body: PlanBody } = first;
    const deadline = Date.now() + 150_000;
    while (!(answer.status === 200 && answer.body.peers === 2)) {
      if (Date.now() > deadline) throw new Error(`no plan for 2 peers within 150 s; last answer ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
      if (answer.body.status === 'failed') throw new Error(`the planner failed: ${answer.body.message}`);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      answer = await get();
    }
    const { plan, text } = answer.body;
    expect(plan!.model.parameters).toBe(535_818);
    expect(plan!.cluster!.peers.map((p) => p.host)).toEqual(['this machine', 'this machine']);
    expect(['single-peer', 'data-parallel', 'pipeline']).toContain(plan!.recommendation.mode);
    expect(plan!.recommendation.reasons.length).toBeGreaterThan(0);
    expect(text).toMatch(/recommendation: /);
  }, 200_000);
});
