import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

/** A fixture's bytes, as a Blob or File takes them. */
export function fixture(name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(join(fixturesDir, name)));
}
