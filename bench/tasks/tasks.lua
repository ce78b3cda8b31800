-- One page of 20 of the user's tasks, the front end's list query.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"query":"{ tasks(first: 20) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id title description status dueAt createdAt updatedAt } } } }"}'
