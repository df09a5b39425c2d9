-- wrk: POST batches of $SIZE delivery events over $SESSIONS sessions,
-- numbered so that the acks of one run follow the sends of the same $RUN.
--   MODE=send  outbound messages, one new id each ("<run>-<k>")
--   MODE=ack   a server ack for id "<run>-<k>", k cycling over the
--              $SENT ids the send phase posted (acks of followed messages)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local size = tonumber(os.getenv("SIZE") or "100")
local sessions = tonumber(os.getenv("SESSIONS") or "1000")
local mode = os.getenv("MODE") or "send"
local sent = tonumber(os.getenv("SENT") or "1")
local run = os.getenv("RUN") or "r"
local n = 0
local pieces = {}
request = function()
  n = n + 1
  for i = 1, size do
    local k = (n - 1) * size + i
    if mode == "ack" then
      k = (k - 1) % sent + 1
      pieces[i] = string.format(
        '{"session":"d%d","type":"ack","message":"%s-%d","status":"server"}', k % sessions, run, k)
    else
      pieces[i] = string.format(
        '{"session":"d%d","type":"message","direction":"outbound","ids":["%s-%d"]}', k % sessions, run, k)
    end
  end
  return wrk.format(nil, nil, nil, "[" .. table.concat(pieces, ",", 1, size) .. "]")
end
