-- wrk script of the image benchmark. With BENCH_RANGE set, every request reads a random
-- BENCH_RANGE-byte range of a BENCH_SIZE-byte file (how a BMC reads a virtual-media ISO);
-- without it, whole-file GETs. At the end one line "WRKJSON {...}" carries the figures.
local size = tonumber(os.getenv("BENCH_SIZE") or "0")
local range = tonumber(os.getenv("BENCH_RANGE") or "0")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  if range > 0 then
    local start = math.floor(math.random() * (size - range))
    return wrk.format("GET", nil, { ["Range"] = string.format("bytes=%d-%d", start, start + range - 1) })
  end
  return wrk.format("GET")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"bytes":%d,"us":%d,"errors":%d,"p50":%.2f,"p99":%.2f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
