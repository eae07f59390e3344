-- Heartbeat: extend the lease of a job this worker still owns.
-- ARGV: prefix, job_id, token, lease_ms. Returns 1 (extended), 2 (extended, and a
-- cancel was requested) or 0 (the lease is lost: the job is no longer ours).
local id, token = ARGV[2], ARGV[3]
local jk = p .. 'job:' .. id
local owner = redis.call('HMGET', jk, 'state', 'token', 'cancel_requested')
if owner[1] ~= 'active' or owner[2] ~= token then
  return 0
end
local deadline = int_text(now_ms() + tonumber(ARGV[4]))
redis.call('ZADD', p .. 'active', 'XX', deadline, id)
redis.call('HSET', jk, 'lease_until', deadline)
if owner[3] then
  return 2
end
return 1
