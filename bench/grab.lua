-- Red-packet grabs by many customers: each request takes the next token of the file
-- (BENCH_TOKENS), threads interleaved, at campaign BENCH_CAMPAIGN; each customer has a device.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
  step = tonumber(os.getenv("BENCH_THREADS") or "2")
  index = tonumber(os.getenv("BENCH_OFFSET") or "0") + tid
  path = "/api/v1/campaigns/" .. os.getenv("BENCH_CAMPAIGN") .. "/red-packets/grab"
end

function request()
  local slot = (index % #tokens) + 1
  index = index + step
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. tokens[slot], ["X-Device-Id"] = "bench-device-" .. slot})
end
