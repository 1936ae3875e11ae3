-- ref.lua - the HTTP ceiling: GET / on the reference nginx (return 200),
-- with the same Authorization header as the service's requests.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
   bench.init_thread()
end

function request()
   return wrk.format("GET", "/api/v1/mail-servers/" .. bench.random_id(), bench.headers())
end
