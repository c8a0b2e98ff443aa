-- Prints one JSON line at the end: requests, non-2xx/3xx responses, socket errors, duration and
-- latency percentiles (microseconds). Other scripts include this file for their `done`.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "non_2xx": %d, "socket_errors": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
