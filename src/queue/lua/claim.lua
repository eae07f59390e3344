-- Claim the next job fairly: take the user at the head of the ring (moving them to
-- the back), then that user's best job. ARGV: prefix, worker_id, token, lease_ms.
-- Returns the job's fields (flat HGETALL list) or nil.
if redis.call('EXISTS', p .. 'paused') == 1 then
  return false
end
local ring = p .. 'ring'
for _ = 1, redis.call('LLEN', ring) do
  local user = redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
  if not user then
    return false
  end
  local wk = p .. 'waiting:' .. user
  local popped = redis.call('ZPOPMIN', wk)
  if redis.call('ZCARD', wk) == 0 then
    redis.call('LREM', ring, 0, user)
  end
  local id = popped[1]
  if id and redis.call('EXISTS', p .. 'job:' .. id) == 1 then
    local jk = p .. 'job:' .. id
    local now = now_ms()
    local deadline = now + tonumber(ARGV[4])
    redis.call('HSET', jk, 'state', 'active', 'worker', ARGV[2], 'token', ARGV[3],
      'started_at', now, 'lease_until', deadline, 'progress', 0)
    redis.call('HDEL', jk, 'stage')
    if redis.call('HINCRBY', jk, 'attempts', 1) == 1 then
      observe(p .. 'hist:wait', (now - tonumber(redis.call('HGET', jk, 'enqueued_at') or now)) / 1000)
    end
    redis.call('ZADD', p .. 'active', deadline, id)
    return job_fields(id)
  end
end
return false
