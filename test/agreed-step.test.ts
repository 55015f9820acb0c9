import { describe, expect, it } from 'vitest';
import { AGREED_STEP_MARGIN_SECONDS, AGREED_STEP_MIN_MARGIN, AgreedStepPicker } from '../coordinator/epoch/agreed-step.js';

describe('the step every pipeline stage agrees to checkpoint or stop after', () => {
  it('is a few steps ahead before the training rate is known', () => {
    const picker = new AgreedStepPicker(40, () => 0);
    expect(picker.pick()).toBe(40 + AGREED_STEP_MIN_MARGIN);
  });

  it('leaves the request the margin time to arrive at the rate the stages train', () => {
    let now = 0;
    const picker = new AgreedStepPicker(0, () => now);
    // 100 steps per second: one step every 10 ms.
    for (let step = 1; step <= 200; step++) {
      now = step * 10;
      picker.heard(step);
    }
    expect(picker.stepsPerSecond).toBeCloseTo(100, 6);
    expect(picker.pick()).toBe(200 + 100 * AGREED_STEP_MARGIN_SECONDS);
  });

  it('follows a change of rate within its window and ignores reports of older steps', () => {
    let now = 0;
    const picker = new AgreedStepPicker(0, () => now);
    for (let step = 1; step <= 100; step++) {
      now = step * 10;
      picker.heard(step);
    }
    // Then one step a second for 20 s: the fast phase leaves the window.
    for (let step = 101; step <= 120; step++) {
      now += 1_000;
      picker.heard(step);
      picker.heard(step - 1);
    }
    expect(picker.newestStep).toBe(120);
    expect(picker.stepsPerSecond).toBeCloseTo(1, 6);
    expect(picker.pick()).toBe(120 + AGREED_STEP_MIN_MARGIN);
  });
});
