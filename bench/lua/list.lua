-- list.lua - GET /api/v1/mail-servers?<BENCH_LIST_QUERY>, e.g.
-- "limit=50&sort=name" or "limit=50&sort=name&q=bravo".
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local path = "/api/v1/mail-servers?" .. (os.getenv("BENCH_LIST_QUERY") or "limit=50&sort=name")
local req = nil

function init(args)
   bench.init_thread()
   req = wrk.format("GET", path, bench.headers())
end

function request()
   return req
end
