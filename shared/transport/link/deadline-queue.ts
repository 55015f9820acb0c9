/** Something with a deadline that the queue expires once it has passed. */
export interface Expirable {
  /** performance.now() time after which the wait fails. */
  readonly deadline: number;
  /** Called once, when the deadline has passed and the wait is still in the queue. */
  expire(): void;
  /** Where the queue keeps it (-1: not queued); owned by the queue. */
  deadlineSlot: number;
}

/**
 * One timer for every pending wait of a link, instead of a setTimeout + clearTimeout per wait:
 * on the receive path of small frames that pair cost more than parsing the frame. Adding and
 * removing a wait are O(1) array operations (no allocation: a Set's rehashing showed up per frame); the timer is armed for the earliest deadline and left
 * running when that wait settles early (it then fires once, finds nothing due and re-arms for the
 * next). The timer is unref'd: a wait only exists on an open link, whose socket keeps the process alive.
 */
export class DeadlineQueue {
  private readonly waits: Expirable[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Deadline the timer is armed for (Infinity: not armed). */
  private armedFor = Infinity;

  get size(): number {
    return this.waits.length;
  }

  add(wait: Expirable): void {
    wait.deadlineSlot = this.waits.length;
    this.waits.push(wait);
    if (wait.deadline < this.armedFor) this.arm(wait.deadline);
  }

  remove(wait: Expirable): void {
    const slot = wait.deadlineSlot;
    if (slot < 0 || this.waits[slot] !== wait) return;
    // Swap with the last one and shrink: order does not matter, deadlines do.
    const last = this.waits.pop() as Expirable;
    if (last !== wait) {
      this.waits[slot] = last;
      last.deadlineSlot = slot;
    }
    wait.deadlineSlot = -1;
  }

  /** Forgets every wait without expiring it (the link closed; the waits fail another way). */
  clear(): void {
    for (const wait of this.waits) wait.deadlineSlot = -1;
    this.waits.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = deadline;
    // +1: timers may fire a fraction of a millisecond before performance.now() reaches the deadline.
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(deadline - performance.now())) + 1);
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    const due = this.waits.filter((wait) => wait.deadline <= now);
    for (const wait of due) this.remove(wait);
    // Expired after the scan: an expiry callback may add or remove waits.
    for (const wait of due) wait.expire();
    let next = Infinity;
    for (const wait of this.waits) if (wait.deadline < next) next = wait.deadline;
    if (next < this.armedFor) this.arm(next);
  };
}
