wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"{ topProducts(first: 5) { upc name price } }"}'
