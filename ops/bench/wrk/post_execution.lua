-- W5 for RecomAMP: each wrk thread logs in (POST /api/v1/auth/login, through curl, once,
-- before its first request) and then POSTs /api/v1/workflows/{id}/executions with its
-- bearer token, the way a real client does. Set by ops/bench/w5.sh:
--   W5_API (http://127.0.0.1:PORT), W5_EMAIL, W5_PASSWORD, W5_WORKFLOW
-- Prints one JSON line at the end: requests/s, latency percentiles, error answers.
-- No per-response Lua callback: wrk counts answers with a status of 400 or more itself
-- (summary.errors.status); a `response` function would make wrk hand every answer's
-- headers and body to Lua, load-generator CPU taken from the two cores being measured.
-- Every 2xx is checked against the rows written by w5.sh.

local function login()
  local body = string.format('{"email":"%s","password":"%s"}', os.getenv("W5_EMAIL"), os.getenv("W5_PASSWORD"))
  local cmd = string.format("curl -sf -X POST %s/api/v1/auth/login -H 'content-type: application/json' -d '%s'",
    os.getenv("W5_API"), body)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local token = out:match('"access_token"%s*:%s*"([^"]+)"')
  if not token then error("login failed: " .. out) end
  return token
end

function init(args)
  local token = login()
  wrk.method = "POST"
  wrk.path = "/api/v1/workflows/" .. os.getenv("W5_WORKFLOW") .. "/executions"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.body = '{"parameters":{"advertiser":"ENTITY1A2B3C","lookback_days":7},"time_window":{"start":"2026-01-01T00:00:00","end":"2026-01-08T00:00:00"}}'
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
