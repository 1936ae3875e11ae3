-- get.lua - GET /api/v1/mail-servers/{id}, a random existing id and a
-- valid bearer token on every request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
   bench.init_thread()
end

function request()
   return wrk.format("GET", "/api/v1/mail-servers/" .. bench.random_id(), bench.headers())
end
