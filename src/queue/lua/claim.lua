-- Claim the next job (see claim_next in prelude.lua). ARGV: prefix, worker_id, token,
-- lease_ms, process ('' for none), process_liveness_ms.
-- Returns the job's fields (flat HGETALL list) or nil.
local job = claim_next(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
save_vtime()
return job
