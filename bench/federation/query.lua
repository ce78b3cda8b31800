-- POSTs the request body in $BENCH_BODY (JSON: the nested query of query.graphql).
local file = assert(io.open(os.getenv("BENCH_BODY"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["content-type"] = "application/json"
