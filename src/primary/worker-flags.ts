// Node flags for the worker processes. Workers hold thousands of long SSE streams; V8 grows its young
// generation under that allocation rate to a 16 MB semi-space, which the bench (S4, 1,000 streams)
// showed as 20-40 MB of resident memory across two workers. An 8 MB semi-space caps half of that. It
// was 4 MB, until one worker measured alone on a CPU of its own under S1 (12 paired rounds) spent
// about a tenth more CPU per request at 4 MB than at 8 or 16 (scavenges twice as often, each one
// copying the same live exchanges); 8 and 16 measured alike. An operator's own setting, on the
// command line or in NODE_OPTIONS, always wins.
const semiSpaceFlag = '--max-semi-space-size';
const defaultSemiSpace = `${semiSpaceFlag}=8`;

export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const setByOperator = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((flag) => flag.replace(/_/g, '-').startsWith(semiSpaceFlag));
  return setByOperator ? [...execArgv] : [...execArgv, defaultSemiSpace];
}
