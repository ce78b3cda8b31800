-- The one-fetch query with a bearer token (BENCH_TOKEN), for the edge's cost.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.body = '{"query":"{ topProducts(first: 5) { upc name price } }"}'
