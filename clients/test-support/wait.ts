/** Polls `check` every 20 ms until it returns a value other than undefined/false. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, limitMs = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((next) => setTimeout(next, 20));
  }
}
