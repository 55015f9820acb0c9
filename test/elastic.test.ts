import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ManagedChild } from '../scripts/local-cluster/managed-child.js';
import { Prng } from '../shared/random/prng.js';
import { ClusterHarness, within } from './fixtures/cluster-harness.js';

const harnesses: ClusterHarness[] = [];
afterAll(async () => {
  await Promise.all(harnesses.map((h) => h.cleanup()));
});

const STEPS = 160;
const KILLS = 10;

function writeJob(harness: ClusterHarness, peers: { min: number; max: number }): string {
  const job = path.join(harness.dir, 'job.json');
  writeFileSync(
    job,
    JSON.stringify({ batchSize: 64, seed: 11, maxSteps: STEPS, peers: { ...peers, graceSeconds: 1 }, checkpoint: { everySteps: 50, everySeconds: 0 }, stepTimeoutSeconds: 30 }),
  );
  return job;
}

describe('elastic recovery (coordinator and peer processes)', () => {
  it(`kill -9 a random peer at a random moment, ${KILLS} times in one run: training finishes, accuracy matches an undisturbed run, nothing hangs`, async () => {
    const seed = Date.now() % 100_000;
    const random = new Prng(seed);
    const context = `(kill schedule seed ${seed})`;

    // The undisturbed run: the same job on one peer, alongside.
    const quiet = new ClusterHarness();
    harnesses.push(quiet);
    const quietCoordinator = await quiet.coordinator(['--port', '0', '--job', writeJob(quiet, { min: 1, max: 1 })]);
    quiet.peer(quietCoordinator.port, { name: 'quiet-peer' });

    const noisy = new ClusterHarness();
    harnesses.push(noisy);
    const { child: coordinator, port } = await noisy.coordinator(['--port', '0', '--job', writeJob(noisy, { min: 1, max: 3 })]);
    const alive: ManagedChild[] = [noisy.peer(port), noisy.peer(port), noisy.peer(port)];
    const killed: { name: string; at: number; step: number }[] = [];
    const lastStep = (): number => noisy.metrics().at(-1)?.step ?? 0;

    // Kill points spread over the run, each at a random moment within a step.
    for (let i = 0; i < KILLS; i++) {
      const target = 8 + Math.floor(((i + random.next()) * (STEPS - 45)) / KILLS);
      await ClusterHarness.until(() => lastStep() >= target || !coordinator.running, 90_000, `step ${target} before kill ${i + 1} ${context}`);
      expect(coordinator.running, `the job ended before kill ${i + 1} ${context}`).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, random.nextInt(400)));
      // A peer that has trained (its state matters). On a fast machine every trained peer can be
      // gone while the replacements are still starting; killing one of those before it ever reached
      // the coordinator tests nothing, so wait for one to train.
      const trainedPeers = (): ManagedChild[] => alive.filter((peer) => noisy.logs(peer, /^epoch started$/).length > 0);
      await ClusterHarness.until(() => trainedPeers().length > 0 || !coordinator.running, 90_000, `a trained peer to kill for kill ${i + 1} ${context}`);
      expect(coordinator.running, `the job ended before kill ${i + 1} ${context}`).toBe(true);
      const pool = trainedPeers();
      const victim = pool[random.nextInt(pool.length)]!;
      killed.push({ name: victim.name, at: Date.now(), step: lastStep() });
      victim.signal('SIGKILL');
      await victim.exited;
      alive.splice(alive.indexOf(victim), 1);
      // A new peer takes its place; it gets the current weights and joins at the next epoch. (Not
      // after the last kill: a peer still starting when the job ends is not what this test is about.)
      if (i < KILLS - 1) alive.push(noisy.peer(port));
    }

    const exit = await within(coordinator.exited, 120_000, `the disturbed job finishing ${context}`);
    expect(exit.code, `${coordinator.stderr} ${context}`).toBe(0);
    expect((await within(quietCoordinator.child.exited, 60_000, 'the undisturbed job finishing')).code).toBe(0);
    // Every surviving peer leaves on its own once the job is over.
    for (const peer of alive) expect((await within(peer.exited, 20_000, `${peer.name} exiting`)).code, peer.name).toBe(0);

    // Each kill was noticed at once (closed socket), well within the 5 s heartbeat timeout.
    const closes = noisy.logs(coordinator, /^link closed$/);
    for (const kill of killed) {
      const seen = closes.find((entry) => String(entry.peer).startsWith(`${kill.name} (peer)`));
      expect(seen, `the coordinator noticed ${kill.name} ${context}`).toBeDefined();
      expect((seen!.time as number) - kill.at, `${kill.name} detected late ${context}`).toBeLessThan(5_000);
    }
    const failedEpochs = noisy.logs(coordinator, /^epoch failed; re-forming/).length;
    expect(failedEpochs, context).toBeGreaterThanOrEqual(KILLS - 2);
    // Replacements received the state and trained: some epoch had a peer started after the first kill.
    const lateStarters = alive.filter((peer) => noisy.logs(peer, /^epoch started$/).some((entry) => entry.startStep !== 0));
    expect(lateStarters.length, context).toBeGreaterThan(0);

    // The curve covers every step once training resumed after each failure.
    const steps = new Set(noisy.metrics().map((point) => point.step));
    expect(steps.size, context).toBe(STEPS);

    const disturbed = noisy.result();
    const undisturbed = quiet.result();
    expect(disturbed.steps).toBe(STEPS);
    expect(Math.abs((disturbed.accuracy as number) - (undisturbed.accuracy as number)), `${JSON.stringify({ disturbed: disturbed.accuracy, undisturbed: undisturbed.accuracy })} ${context}`).toBeLessThanOrEqual(0.005);
  }, 240_000);
});
