-- common.lua - shared by the benchmark's wrk scripts (bench/run.sh).
-- Environment: BENCH_TOKEN (a bearer token), BENCH_IDS (ids 1..N exist),
-- BENCH_RUN (a tag that makes created names unique across runs),
-- BENCH_RESULT (file that done() appends one JSON line to).
-- Each wrk thread has its own Lua state: setup() numbers the threads so
-- that every thread draws its own random ids and makes its own names.

bench = {}
bench.token = os.getenv("BENCH_TOKEN") or ""
bench.ids = tonumber(os.getenv("BENCH_IDS") or "1000")
bench.run = os.getenv("BENCH_RUN") or "0"
bench.auth = "Bearer " .. bench.token

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_no", counter)
   table.insert(threads, thread)
end

-- Called in each thread's state after setup.
function bench.init_thread()
   local no = thread_no or 0
   math.randomseed(os.time() * 1000 + no * 7919)
   bench.thread_no = no
   bench.seq = 0
end

function bench.random_id()
   return math.random(1, bench.ids)
end

-- A name no other request of any run has used (the name is unique
-- without regard to case, docs/api.md#a-mail-server).
function bench.unique_name()
   bench.seq = bench.seq + 1
   return string.format("bench-%s-%d-%d", bench.run, bench.thread_no, bench.seq)
end

function bench.headers(extra)
   local h = { ["Authorization"] = bench.auth }
   if extra then
      for k, v in pairs(extra) do h[k] = v end
   end
   return h
end

function bench.post_body(name)
   return string.format(
      '{"name":"%s","server":"smtp.new.example.com","port":587,' ..
      '"sender_name":"Bench writer","sender_email":"bench@new.example.com",' ..
      '"auth_type":"basic","username":"bench","password":"not-a-real-password"}', name)
end

function bench.patch_body()
   bench.seq = bench.seq + 1
   return string.format('{"sender_name":"Patched %d-%d"}', bench.thread_no, bench.seq)
end

-- One JSON line per measurement: what bench/run.sh reads.
function done(summary, latency, requests)
   local e = summary.errors
   local line = string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99))
   local path = os.getenv("BENCH_RESULT")
   if path and path ~= "" then
      local f = assert(io.open(path, "a"))
      f:write(line)
      f:close()
   else
      io.write(line)
   end
end
