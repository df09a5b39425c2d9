-- wrk: POST batches of $SIZE inbound-message events, every event with an
-- id never used before (so none is a duplicate, in embedded or cluster
-- mode), over $SESSIONS sessions. With $PARTS and $PART set, only sessions
-- whose number is PART modulo PARTS (the partition the simulation routes
-- to this replica).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local size = tonumber(os.getenv("SIZE") or "100")
local sessions = tonumber(os.getenv("SESSIONS") or "1000")
local parts = tonumber(os.getenv("PARTS") or "1")
local part = tonumber(os.getenv("PART") or "0")
local run = os.getenv("RUN") or (tostring(os.time()) .. tostring(math.random(1000000)))
local n = 0
local pieces = {}
request = function()
  n = n + 1
  for i = 1, size do
    local k = n * size + i
    local s = (k % math.floor(sessions / parts)) * parts + part
    pieces[i] = string.format(
      '{"session":"s%d","type":"message","direction":"inbound","id":"%s-%d-%d"}', s, run, n, i)
  end
  return wrk.format(nil, nil, nil, "[" .. table.concat(pieces, ",", 1, size) .. "]")
end
