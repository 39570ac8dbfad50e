import type { FeedMessage, RevocationEvent } from '../../src/shared/revocation-event.js';
import type { FeedListener } from '../../src/verifier/revocation-source.js';

/** Records everything a feed delivers and lets a test await a condition on it (with a deadline). */
export class FeedCollector implements FeedListener {
  readonly messages: FeedMessage[] = [];
  /** Every callback in arrival order: 'ready', 'disconnect', 'rev:<seq>', 'hb:<seq>'. */
  readonly calls: string[] = [];
  readyCount = 0;
  disconnectCount = 0;
  private waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  onMessage(message: FeedMessage): void {
    this.messages.push(message);
    this.calls.push(`${message.type}:${message.seq}`);
    this.notify();
  }

  onReady(): void {
    this.readyCount += 1;
    this.calls.push('ready');
    this.notify();
  }

  onDisconnect(): void {
    this.disconnectCount += 1;
    this.calls.push('disconnect');
    this.notify();
  }

  get revocations(): RevocationEvent[] {
    return this.messages.filter((m): m is RevocationEvent => m.type === 'rev');
  }

  /** Resolves when `check()` holds; rejects with `what` after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; calls: ${this.calls.slice(-20).join(' ')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private notify(): void {
    const due = this.waiters.filter((w) => w.check());
    this.waiters = this.waiters.filter((w) => !due.includes(w));
    for (const w of due) w.resolve();
  }
}
