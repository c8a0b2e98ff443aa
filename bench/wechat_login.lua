-- Mini-program logins: each request a fresh wx.login code (codes work once), for a pool of
-- returning users (the warm-up run creates them).
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")

function init(args)
  counter = 0
  run = os.getenv("BENCH_RUN") or "r"
end

function request()
  counter = counter + 1
  local user = "bench" .. ((counter * 7 + tid) % 1000)
  local body = '{"code":"' .. user .. "." .. run .. "t" .. tid .. "n" .. counter .. '"}'
  return wrk.format("POST", "/api/v1/channels/wechat/login", {["Content-Type"] = "application/json"}, body)
end
