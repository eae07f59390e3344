-- Hand a job back unfinished (graceful shutdown): it waits again at its old place and
-- the attempt does not count. ARGV: prefix, job_id, token. Returns 1, or 0 if not ours.
local id, token = ARGV[2], ARGV[3]
local jk = p .. 'job:' .. id
local owner = redis.call('HMGET', jk, 'state', 'token', 'user_id', 'priority', 'seq')
if owner[1] ~= 'active' or owner[2] ~= token then
  return 0
end
redis.call('ZREM', p .. 'active', id)
redis.call('HSET', jk, 'state', 'waiting')
redis.call('HDEL', jk, 'token', 'lease_until', 'worker', 'process')
redis.call('HINCRBY', jk, 'attempts', -1)
add_waiting(id, owner[3], owner[4], owner[5])
wake(1)
return 1
