-- Cancel a job. Waiting or delayed: removed and finished 'cancelled' at once. Active:
-- flagged; its worker sees the flag within a second and stops. ARGV: prefix, job_id.
-- Returns 'cancelled', 'cancelling', 'missing', or the terminal state it already has.
local id = ARGV[2]
local jk = p .. 'job:' .. id
local f = redis.call('HMGET', jk, 'state', 'user_id', 'waiters')
local state = f[1]
if not state then
  return 'missing'
end
if state == 'waiting' then
  remove_waiting(id, f[2])
  finish(id, 'cancelled', '')
  wake_waiters(id, f[3])
  return 'cancelled'
end
if state == 'delayed' then
  redis.call('ZREM', p .. 'delayed', id)
  finish(id, 'cancelled', '')
  wake_waiters(id, f[3])
  return 'cancelled'
end
if state == 'active' then
  redis.call('HSET', jk, 'cancel_requested', 1)
  return 'cancelling'
end
return state
