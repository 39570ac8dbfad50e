/** Poll a condition until it holds or the deadline passes (for state reached through another process). */
export async function eventually(cond: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
