-- POSTs the request body in $BENCH_BODY (JSON: the nested query of query.graphql).
-- BENCH_STOP_AFTER=N: wrk exits after N responses of a thread, printing nothing (a warm-up of a
-- fixed size: thread:stop() would still wait out the duration).
local file = assert(io.open(os.getenv("BENCH_BODY"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["content-type"] = "application/json"

local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "")
if stop_after then
  local responses = 0
  function response()
    responses = responses + 1
    if responses >= stop_after then os.exit(0) end
  end
end
