-- wrk: POST one gateway webhook delivery per request, each a new inbound
-- message (unique delivery and message ids, so none is a duplicate), over
-- 1,000 sessions. $GATEWAY is "waha", "evolution" or "cloud" (the WhatsApp
-- Cloud API; the server needs INGEST_TOKEN and wrk its bearer header, as
-- a Lua script cannot sign the body).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local gateway = os.getenv("GATEWAY") or "waha"
local run = tostring(os.time()) .. tostring(math.random(1000000))
local n = 0
request = function()
  n = n + 1
  local body
  if gateway == "waha" then
    body = string.format(
      '{"id":"evt_%s_%d","event":"message","session":"waha-%d","engine":"NOWEB",' ..
      '"payload":{"id":"false_31687654321@c.us_%s_%d","fromMe":false,"body":"hi"},' ..
      '"me":{"id":"31612345678@c.us","pushName":"Acme"}}',
      run, n, n % 1000, run, n)
  elseif gateway == "cloud" then
    body = string.format(
      '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages",' ..
      '"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1555%07d",' ..
      '"phone_number_id":"cloud-%d"},"messages":[{"from":"16505551234","id":"wamid.%s%d",' ..
      '"timestamp":"1749416383","type":"text","text":{"body":"hi"}}]}}]}]}',
      n % 1000, n % 1000, run, n)
  else
    body = string.format(
      '{"event":"messages.upsert","instance":"evo-%d","data":{"key":{"remoteJid":' ..
      '"31687654321@s.whatsapp.net","fromMe":false,"id":"3EB0%s%d"},"message":' ..
      '{"conversation":"hi"},"messageType":"conversation"},"date_time":"2026-01-01T00:00:00.000Z"}',
      n % 1000, run, n)
  end
  return wrk.format(nil, nil, nil, body)
end
