-- wrk: each connection waits DELAY_MS between requests, so the offered rate
-- is about connections x 1000 / (DELAY_MS + latency). Used to measure
-- latency below peak load (wrk alone always runs at peak).
local pause = tonumber(os.getenv("DELAY_MS") or "1")
function delay()
  return pause
end
