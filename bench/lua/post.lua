-- post.lua - POST /api/v1/mail-servers with a name never used before.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
   bench.init_thread()
end

function request()
   return wrk.format("POST", "/api/v1/mail-servers",
                     bench.headers({ ["Content-Type"] = "application/json" }),
                     bench.post_body(bench.unique_name()))
end
