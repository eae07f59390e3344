-- Return jobs whose lease expired (their worker died or hung) to their user's queue,
-- counting a stall; fail them after max_stalls; finish them cancelled if a cancel was
-- requested. ARGV: prefix, max_stalls, limit.
-- Returns a flat list of (job_id, document_id, outcome, stalls).
local now = now_ms()
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'active', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  local jk = p .. 'job:' .. id
  redis.call('ZREM', p .. 'active', id)
  if redis.call('EXISTS', jk) == 1 then
    local f = redis.call('HMGET', jk, 'document_id', 'user_id', 'priority', 'seq', 'cancel_requested')
    local stalls = redis.call('HINCRBY', jk, 'stalls', 1)
    redis.call('HINCRBY', p .. 'stats', 'stalled', 1)
    local outcome
    if f[5] then
      outcome = 'cancelled'
      finish(id, 'cancelled', '')
    elseif stalls > tonumber(ARGV[2]) then
      outcome = 'failed'
      finish(id, 'failed', 'the job stalled ' .. stalls .. ' times (its worker stopped responding)')
    else
      outcome = 'waiting'
      redis.call('HSET', jk, 'state', 'waiting')
      redis.call('HDEL', jk, 'token', 'lease_until')
      add_waiting(id, f[2], f[3], f[4])
      wake(1)
    end
    table.insert(out, id)
    table.insert(out, f[1])
    table.insert(out, outcome)
    table.insert(out, stalls)
  end
end
return out
