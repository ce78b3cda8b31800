-- wrk: ask `me` with the token in $TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"query":"{ me { id email } }"}'

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "bench@example.com") then
    error("me failed: " .. status .. " " .. body)
  end
end
