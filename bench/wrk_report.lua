-- Shared by the wrk scripts (each includes this file first): numbers the threads (`tid`, for
-- scripts that share out their requests), counts the answers that were not 2xx/3xx by status,
-- and prints one JSON line at the end: requests, non-2xx/3xx responses (and by status), socket
-- errors, duration and latency percentiles (microseconds).
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

statuses = {}
function response(status, headers, body)
  if status >= 400 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local by_status = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(by_status) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "non_2xx": %d, "statuses": {%s}, "socket_errors": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, errors.status, table.concat(parts, ", "), errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
