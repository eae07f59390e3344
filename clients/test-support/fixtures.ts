import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** The clients' own fixtures (corpus documents chosen for the browser tests). */
const clientFixtures = join(here, "fixtures");
/** The Rust tests' fixtures: documents both suites upload are kept there once. */
const serverFixtures = join(here, "..", "..", "tests", "fixtures");

/** Where a fixture is: the clients' own, else the one the Rust tests keep. */
export function fixturePath(name: string): string {
  const own = join(clientFixtures, name);
  return existsSync(own) ? own : join(serverFixtures, name);
}

/** A fixture's bytes, as a Blob or File takes them. */
export function fixture(name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(fixturePath(name)));
}
