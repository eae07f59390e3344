-- End a job this worker owns as completed or cancelled, or failed for good, and when
-- asked claim the worker's next job in the same step (one round trip per job).
-- ARGV: prefix, job_id, token, state, error, then for the next claim: worker_id
-- ('' for no claim), token, lease_ms, process, process_liveness_ms.
-- Returns {'0'} when the token no longer owns the job (the lease was lost and the job
-- moved on: nothing is changed then), else {'1'} followed by the next job's fields.
local id, token, state = ARGV[2], ARGV[3], ARGV[4]
local owner = redis.call('HMGET', p .. 'job:' .. id, 'state', 'token')
if owner[1] ~= 'active' or owner[2] ~= token then
  return {'0'}
end
local jk = p .. 'job:' .. id
local started = tonumber(redis.call('HGET', jk, 'started_at') or 0)
finish(id, state, ARGV[5])
if state == 'completed' and started > 0 then
  local took = now_ms() - started
  redis.call('HSET', jk, 'duration_ms', took)
  -- Moving averages of speed (ms per KiB) per content type and overall, for ETAs.
  local f = redis.call('HMGET', jk, 'content_type', 'size_bytes')
  local content_type = f[1] or 'unknown'
  redis.call('SADD', p .. 'hist:types', content_type)
  observe(p .. 'hist:duration:' .. content_type, took / 1000)
  -- Completions per minute, for throughput over the last 1/5/15 minutes.
  local minute_key = p .. 'throughput:' .. math.floor(now_ms() / 60000)
  if redis.call('INCR', minute_key) == 1 then
    redis.call('EXPIRE', minute_key, 3600)
  end
  local rate = took / math.max(tonumber(f[2] or 0) / 1024, 1)
  for _, field in ipairs({f[1] or '*', '*'}) do
    local previous = tonumber(redis.call('HGET', p .. 'eta', field))
    local average = previous and (previous * 0.8 + rate * 0.2) or rate
    redis.call('HSET', p .. 'eta', field, tostring(average))
  end
end
local reply = {'1'}
if ARGV[6] and ARGV[6] ~= '' then
  local next_job = claim_next(ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
  if next_job then
    for _, field in ipairs(next_job) do
      table.insert(reply, field)
    end
  end
end
return reply
