-- Rescue running jobs whose owner is gone: those whose lease expired (their worker
-- died or hung), and at once those whose worker process's liveness key expired (the
-- process was killed). Each goes back to the queue counting a stall, fails after
-- max_stalls, or finishes cancelled if a cancel was requested. ARGV: prefix,
-- max_stalls, limit. Returns a flat list of (job_id, document_id, outcome, stalls,
-- worker, attempt): the run that stalled, so its row is ended only if no newer run of
-- the job has taken the row already.
local now = now_ms()
local out = {}

local function rescue(id)
  local jk = p .. 'job:' .. id
  redis.call('ZREM', p .. 'active', id)
  if redis.call('EXISTS', jk) == 0 then
    return
  end
  local f = redis.call('HMGET', jk, 'document_id', 'user_id', 'priority', 'seq', 'cancel_requested', 'worker',
    'attempts', 'waiters')
  local stalls = redis.call('HINCRBY', jk, 'stalls', 1)
  redis.call('HINCRBY', p .. 'stats', 'stalled', 1)
  local outcome
  if f[5] then
    outcome = 'cancelled'
    finish(id, 'cancelled', '')
    wake_waiters(id, f[8])
  elseif stalls > tonumber(ARGV[2]) then
    outcome = 'failed'
    finish(id, 'failed', 'the job stalled ' .. stalls .. ' times (its worker stopped responding)')
    wake_waiters(id, f[8])
  else
    outcome = 'waiting'
    redis.call('HSET', jk, 'state', 'waiting')
    redis.call('HDEL', jk, 'token', 'lease_until', 'process')
    add_waiting(id, f[2], f[3], f[4])
    wake(1)
  end
  for _, value in ipairs({id, f[1], outcome, stalls, f[6] or '', f[7] or '0'}) do
    out[#out + 1] = value
  end
end

local limit = tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'active', '-inf', now, 'LIMIT', 0, limit)) do
  rescue(id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'active', '(' .. now, '+inf', 'LIMIT', 0, limit)) do
  local process = redis.call('HGET', p .. 'job:' .. id, 'process')
  if process and process ~= '' and redis.call('EXISTS', p .. 'alive:' .. process) == 0 then
    rescue(id)
  end
end
return out
