-- Jobs per state: waiting, delayed, active, completed, failed, cancelled.
local waiting = 0
for _, user in ipairs(redis.call('LRANGE', p .. 'ring', 0, -1)) do
  waiting = waiting + redis.call('ZCARD', p .. 'waiting:' .. user)
end
return {waiting, redis.call('ZCARD', p .. 'delayed'), redis.call('ZCARD', p .. 'active'),
  redis.call('ZCARD', p .. 'completed'), redis.call('ZCARD', p .. 'failed'),
  redis.call('ZCARD', p .. 'cancelled')}
