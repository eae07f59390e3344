-- Claim the next job in fair order: the lowest slot of <p>queue. Its slot becomes the
-- virtual time. ARGV: prefix, worker_id, token, lease_ms, process ('' for none),
-- process_liveness_ms. A claim for a process also renews that process's liveness key,
-- so the key exists whenever the process owns a job.
-- Returns the job's fields (flat HGETALL list) or nil.
if redis.call('EXISTS', p .. 'paused') == 1 then
  return false
end
while true do
  local popped = redis.call('ZPOPMIN', p .. 'queue')
  local id = popped[1]
  if not id then
    return false
  end
  redis.call('SET', p .. 'vtime', popped[2])
  local jk = p .. 'job:' .. id
  local user = redis.call('HGET', jk, 'user_id')
  if user then
    remove_waiting(id, user)
    local now = now_ms()
    local deadline = now + tonumber(ARGV[4])
    redis.call('HSET', jk, 'state', 'active', 'worker', ARGV[2], 'token', ARGV[3],
      'started_at', now, 'lease_until', deadline, 'progress', 0, 'process', ARGV[5])
    if ARGV[5] ~= '' then
      redis.call('SET', p .. 'alive:' .. ARGV[5], 1, 'PX', ARGV[6])
    end
    redis.call('HDEL', jk, 'stage')
    if redis.call('HINCRBY', jk, 'attempts', 1) == 1 then
      observe(p .. 'hist:wait', (now - tonumber(redis.call('HGET', jk, 'enqueued_at') or now)) / 1000)
    end
    redis.call('ZADD', p .. 'active', deadline, id)
    return job_fields(id)
  end
end
