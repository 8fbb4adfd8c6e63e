-- wrk script: POST a new Secret per request at a fixed rate per connection (wrk's delay()),
-- for the mutating-latency-under-load measurement. Arguments (after --): NAME_PREFIX NAMESPACE
-- QPS_PER_CONNECTION
local counter = 0
local ids = 0
local prefix, namespace, qps = "s", "default", 50

function setup(thread)
  ids = ids + 1
  thread:set("tid", ids)
end

function init(args)
  prefix = args[1] or prefix
  namespace = args[2] or namespace
  qps = tonumber(args[3] or "50")
end

function delay()
  return 1000 / qps
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%s-%d-%d"},' ..
    '"type":"Opaque","stringData":{"password":"p-%d"}}', prefix, tid, counter, counter)
  return wrk.format("POST", "/api/v1/namespaces/" .. namespace .. "/secrets",
                    {["Content-Type"] = "application/json",
                     ["Authorization"] = "Bearer " .. (os.getenv("KILN_BENCH_TOKEN") or "")}, body)
end

done = function(summary, latency, requests)
  io.write(string.format('{"requests":%d,"errors":%d,"seconds":%.2f,"p50_ms":%.2f,"p99_ms":%.2f,"non2xx":%d}\n',
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
