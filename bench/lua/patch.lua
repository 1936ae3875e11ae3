-- patch.lua - PATCH /api/v1/mail-servers/{id} (JSON merge patch of
-- sender_name, no If-Match) on a random seeded server.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
   bench.init_thread()
end

function request()
   return wrk.format("PATCH", "/api/v1/mail-servers/" .. bench.random_id(),
                     bench.headers({ ["Content-Type"] = "application/merge-patch+json" }),
                     bench.patch_body())
end
