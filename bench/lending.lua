-- Quotes or applications by distinct applicants: each request takes the next unused token of
-- this thread's share of the file (BENCH_TOKENS), starting at BENCH_OFFSET.
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
  step = tonumber(os.getenv("BENCH_THREADS") or "2")
  index = tonumber(os.getenv("BENCH_OFFSET") or "0") + tid
  mode = os.getenv("BENCH_MODE")
  body = '{"amount_yuan":100000,"term_months":12,"repayment_method":"equal_instalment"}'
end

function request()
  local token = tokens[(index % #tokens) + 1]
  index = index + step
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  if mode == "apply" then
    headers["Idempotency-Key"] = "bench-" .. index
    return wrk.format("POST", "/api/v1/applications", headers,
      '{"product_code":"SHUIYITONG","amount_yuan":100000,"term_months":12,"repayment_method":"equal_instalment"}')
  end
  return wrk.format("POST", "/api/v1/products/SHUIYITONG/quote", headers, body)
end
