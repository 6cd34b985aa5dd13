-- wrk script for S6 (a new connection per request): as wrk-report.lua, and it counts the responses
-- that did not say `Connection: close`, after which wrk would have kept the connection instead.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  keptAlive = 0
  if args[1] ~= nil and args[1] ~= "" then
    local file = assert(io.open(args[1], "rb"))
    wrk.body = file:read("*a")
    file:close()
  end
end

function response(status, headers, body)
  for name, value in pairs(headers) do
    if string.lower(name) == "connection" and string.lower(value) == "close" then return end
  end
  keptAlive = keptAlive + 1
end

function done(summary, latency, requests)
  local kept = 0
  for _, thread in ipairs(threads) do kept = kept + thread:get("keptAlive") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"errConnect":%d,"errRead":%d,"errWrite":%d,"errStatus":%d,"errTimeout":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"keptAlive":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, kept))
end
