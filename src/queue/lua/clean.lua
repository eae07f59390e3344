-- Remove finished jobs of one state (completed, failed or cancelled) from Redis: all
-- finished before max_finished_at, then the oldest beyond max_count.
-- ARGV: prefix, state, max_finished_at_ms, max_count, limit. Returns the removed ids.
local set = p .. ARGV[2]
local removed = {}
local limit = tonumber(ARGV[5])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', '(' .. ARGV[3], 'LIMIT', 0, limit)) do
  table.insert(removed, id)
end
local excess = redis.call('ZCARD', set) - #removed - tonumber(ARGV[4])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', set, #removed, #removed + math.min(excess, limit) - 1)) do
    table.insert(removed, id)
  end
end
for _, id in ipairs(removed) do
  redis.call('ZREM', set, id)
  redis.call('DEL', p .. 'job:' .. id)
end
return removed
