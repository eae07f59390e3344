-- Brings keys an earlier version left to this version's shape; one TYPE when there is
-- nothing to do. Returns how many keys were converted.
-- <p>users, a sorted set of each waiting user's count, became the hash
-- <p>users_waiting: each of its users' counts is taken again from <p>waiting:<user>,
-- which holds the user's waiting jobs, so counts moved by either version come out exact.
local old = p .. 'users'
if redis.call('TYPE', old).ok ~= 'zset' then
  return 0
end
for _, user in ipairs(redis.call('ZRANGE', old, '0', '-1')) do
  local waiting = redis.call('ZCARD', p .. 'waiting:' .. user)
  if waiting > 0 then
    redis.call('HSET', p .. 'users_waiting', user, int_text(waiting))
  else
    redis.call('HDEL', p .. 'users_waiting', user)
  end
end
redis.call('DEL', old)
return 1
