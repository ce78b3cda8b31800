-- wrk: log the benchmark user in, flat out.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query":"mutation($e:String!,$p:String!){login(email:$e,password:$p){expiresIn}}","variables":{"e":"bench@example.com","p":"benchmark password 1"}}'

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "expiresIn") then
    error("login failed: " .. status .. " " .. body)
  end
end
