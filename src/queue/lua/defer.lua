-- Put an active job back to wait until another job has ended: its processor cannot go
-- on before (an identical document in flight, whose chunks it will copy), and a worker
-- must not be held while it waits. The attempt does not count. The other job's end
-- wakes it (wake_waiters: every script that ends a job, and retry.lua); `fallback_ms`
-- bounds the wait should that end be missed (the other job's record was lost).
-- ARGV: prefix, job_id, token, job id waited for, fallback_ms, retry_ms.
-- When the job waited for has ended already, its row is about to say how: the job
-- waits `retry_ms` only. Returns 1, or 0 if the token no longer owns the job.
local id, token, until_ended = ARGV[2], ARGV[3], ARGV[4]
local jk = p .. 'job:' .. id
local owner = redis.call('HMGET', jk, 'state', 'token')
if owner[1] ~= 'active' or owner[2] ~= token then
  return 0
end
local other = p .. 'job:' .. until_ended
local delay = tonumber(ARGV[6])
local f = redis.call('HMGET', other, 'state', 'waiters')
local state, waiters = f[1], f[2]
if state == 'active' or state == 'waiting' or state == 'delayed' then
  delay = tonumber(ARGV[5])
  if not waiters then
    redis.call('HSET', other, 'waiters', id)
  elseif not string.find(' ' .. waiters .. ' ', ' ' .. id .. ' ', 1, true) then
    redis.call('HSET', other, 'waiters', waiters .. ' ' .. id)
  end
end
local at = int_text(now_ms() + delay)
redis.call('ZREM', p .. 'active', id)
redis.call('HSET', jk, 'state', 'delayed', 'retry_at', at)
redis.call('HDEL', jk, 'token', 'lease_until', 'worker', 'process')
redis.call('HINCRBY', jk, 'attempts', -1)
redis.call('ZADD', p .. 'delayed', at, id)
return 1
