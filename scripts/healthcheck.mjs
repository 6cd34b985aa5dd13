// The container's HEALTHCHECK: 0 when the primary's admin /healthz answers 200, else 1. The address
// is the default admin.listen; set LLM_PROXY_ADMIN (host:port) when the config moves it.
const admin = process.env.LLM_PROXY_ADMIN ?? '127.0.0.1:9090';
try {
  const res = await fetch(`http://${admin}/healthz`, { signal: AbortSignal.timeout(2_000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
