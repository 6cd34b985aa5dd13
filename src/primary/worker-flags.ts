// Node flags for the worker processes. Workers hold thousands of long SSE streams; V8 grows its young
// generation under that allocation rate to a 16 MB semi-space, which the bench (S4, 1,000 streams)
// showed as ~40 MB of resident memory across two workers, with no measurable CPU saved (S1, 3 rounds).
// A 4 MB semi-space keeps it small. An operator's own setting, on the command line or in
// NODE_OPTIONS, always wins.
const semiSpaceFlag = '--max-semi-space-size';
const defaultSemiSpace = `${semiSpaceFlag}=4`;

export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const setByOperator = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((flag) => flag.replace(/_/g, '-').startsWith(semiSpaceFlag));
  return setByOperator ? [...execArgv] : [...execArgv, defaultSemiSpace];
}
