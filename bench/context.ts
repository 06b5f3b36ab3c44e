/** What the runner gives every benchmark. */
export interface BenchContext {
  /** Shorter timing, for a quick look; the results file uses full runs. */
  quick: boolean;
  /** Progress and findings, printed as the benchmark goes. */
  log(text: string): void;
}
