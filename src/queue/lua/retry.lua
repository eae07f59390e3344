-- A transient failure: schedule a retry with exponential back-off and jitter, or fail
-- the job when its retries are spent. ARGV: prefix, job_id, token, error,
-- max_retries, backoff_base_ms, backoff_max_ms, jitter (0.75..1.25).
-- Returns {'retrying', delay_ms, failures} / {'failed', 0, failures} / {'lost', 0, 0}.
local id, token = ARGV[2], ARGV[3]
local jk = p .. 'job:' .. id
local owner = redis.call('HMGET', jk, 'state', 'token', 'waiters')
if owner[1] ~= 'active' or owner[2] ~= token then
  return {'lost', 0, 0}
end
-- Its waiters run now: a failed run makes no chunks to copy.
wake_waiters(id, owner[3])
local failures = redis.call('HINCRBY', jk, 'failures', 1)
if failures > tonumber(ARGV[5]) then
  finish(id, 'failed', ARGV[4])
  return {'failed', 0, failures}
end
local delay = math.min(tonumber(ARGV[6]) * 2 ^ (failures - 1), tonumber(ARGV[7]))
delay = math.floor(delay * tonumber(ARGV[8]))
redis.call('ZREM', p .. 'active', id)
redis.call('HSET', jk, 'state', 'delayed', 'error', ARGV[4], 'retry_at', now_ms() + delay)
redis.call('HDEL', jk, 'token', 'lease_until', 'process')
redis.call('ZADD', p .. 'delayed', now_ms() + delay, id)
redis.call('HINCRBY', p .. 'stats', 'retried', 1)
return {'retrying', delay, failures}
