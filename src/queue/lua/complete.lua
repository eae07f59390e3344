-- End a job this worker owns as completed or cancelled, or failed for good, and when
-- asked claim the worker's next job in the same step (one round trip per job).
-- ARGV: prefix, job_id, token, state, error, then for the next claim: worker_id
-- ('' for no claim), token, lease_ms, process, process_liveness_ms.
-- Returns {'0'} when the token no longer owns the job (the lease was lost and the job
-- moved on: nothing is changed then), else {'1', finished_at} followed by the next
-- job's fields. Its histogram and ETA figures are summed up by the caller's process
-- (src/queue/statistics.rs).
local id, token, state = ARGV[2], ARGV[3], ARGV[4]
local owner = redis.call('HMGET', p .. 'job:' .. id, 'state', 'token', 'started_at', 'waiters')
if owner[1] ~= 'active' or owner[2] ~= token then
  return {'0'}
end
local finished_at = finish(id, state, ARGV[5], tonumber(owner[3] or 0))
wake_waiters(id, owner[4])
if state == 'completed' then
  -- Completions per minute, for throughput over the last 1/5/15 minutes.
  local minute_key = p .. 'throughput:' .. int_text(math.floor(finished_at / 60000))
  if redis.call('INCR', minute_key) == 1 then
    redis.call('EXPIRE', minute_key, 3600)
  end
end
local reply = {'1', finished_at}
if ARGV[6] and ARGV[6] ~= '' then
  local next_job = claim_next(ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
  if next_job then
    for i, field in ipairs(next_job) do
      reply[i + 2] = field
    end
  end
end
return reply
