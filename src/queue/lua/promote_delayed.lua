-- Move retries whose back-off is over back to their user's queue.
-- ARGV: prefix, limit. Returns how many were promoted.
local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  promote(id)
end
return #due
