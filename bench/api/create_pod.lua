-- wrk script: POST a new Pod per request, as kubectl would (JSON).
-- Arguments (after --): NAME_PREFIX NAMESPACE [MAX_REQUESTS_PER_THREAD]
local counter = 0
local ids = 0
local prefix, namespace, limit = "bench", "default", 0

function setup(thread)
  ids = ids + 1
  thread:set("tid", ids)
end

function init(args)
  prefix = args[1] or prefix
  namespace = args[2] or namespace
  limit = tonumber(args[3] or "0")
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s-%d-%d","labels":{"app":"bench"}},' ..
    '"spec":{"containers":[{"name":"c","image":"kiln.test/busybox:1"}]}}', prefix, tid, counter)
  return wrk.format("POST", "/api/v1/namespaces/" .. namespace .. "/pods",
                    {["Content-Type"] = "application/json",
                     ["Authorization"] = "Bearer " .. (os.getenv("KILN_BENCH_TOKEN") or "")}, body)
end

response = function(status, headers, body)
  if limit > 0 and counter >= limit then wrk.thread:stop() end
end

done = function(summary, latency, requests)
  io.write(string.format('{"requests":%d,"errors":%d,"seconds":%.2f,"p50_ms":%.2f,"p99_ms":%.2f,"non2xx":%d}\n',
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
