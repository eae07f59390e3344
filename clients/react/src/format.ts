import type { Stage } from "@docqueue/client";

/** 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, … */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th";
  return `${n}${suffix}`;
}

/** "about 20 s", "about 3 min": rounded the way a person would say it. */
export function aboutDuration(seconds: number): string {
  if (seconds < 10) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.round(minutes / 6) / 10} h`;
}

export const stageLabels: Record<Stage, string> = {
  extracting: "Reading",
  chunking: "Splitting",
  embedding: "Indexing",
  storing: "Saving",
};
