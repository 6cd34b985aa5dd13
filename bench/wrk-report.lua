-- wrk script for the bench: POST with the body read from the file named by the first script
-- argument, and a machine-readable summary line at the end.
function init(args)
  wrk.method = "POST"
  if args[1] ~= nil and args[1] ~= "" then
    local file = assert(io.open(args[1], "rb"))
    wrk.body = file:read("*a")
    file:close()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"errConnect":%d,"errRead":%d,"errWrite":%d,"errStatus":%d,"errTimeout":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
