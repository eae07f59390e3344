-- Move retries whose back-off is over back to their user's queue.
-- ARGV: prefix, limit. Returns how many were promoted.
local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', p .. 'delayed', id)
  local jk = p .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'user_id', 'priority', 'seq')
  if f[1] then
    redis.call('HSET', jk, 'state', 'waiting')
    redis.call('HDEL', jk, 'retry_at')
    add_waiting(id, f[1], f[2], f[3])
    wake(1)
  end
end
return #due
