-- mix.lua - 90 % reads (GET by id), 10 % writes (5 % PATCH, 5 % POST),
-- drawn at random per request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
   bench.init_thread()
end

function request()
   local r = math.random(1, 100)
   if r <= 90 then
      return wrk.format("GET", "/api/v1/mail-servers/" .. bench.random_id(), bench.headers())
   elseif r <= 95 then
      return wrk.format("PATCH", "/api/v1/mail-servers/" .. bench.random_id(),
                        bench.headers({ ["Content-Type"] = "application/merge-patch+json" }),
                        bench.patch_body())
   else
      return wrk.format("POST", "/api/v1/mail-servers",
                        bench.headers({ ["Content-Type"] = "application/json" }),
                        bench.post_body(bench.unique_name()))
   end
end
