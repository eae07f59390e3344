-- Publish one event to its user: stamp it with the user's next sequence number, keep
-- it in the user's bounded stream (for resume) and broadcast it to every process.
-- ARGV: prefix, user_id, event JSON (without seq), stream max length, and '1' to
-- publish even about a job whose document.queued has not been published yet.
-- Returns the seq, or -1 when the event was held back for that reason: the uploader
-- announces its jobs after enqueueing them (the announcement carries the position), and
-- a busy worker can claim one in between; the caller publishes again a moment later, so
-- the owner never hears of a job's progress, or its end, before it heard it was queued.
-- KEYS[1]: the prefix, declared for Redis Cluster (see src/queue/lua/prelude.lua).
-- (Keys: see src/queue/keys.rs.)
-- Keys: <p>events:seq:<user> and <p>events:stream:<user>. The kind comes before the
-- user id, so no user id (say "seq:bob") can name another user's key.
local p, user = ARGV[1], ARGV[2]
local event = cjson.decode(ARGV[3])
local jk = p .. 'job:' .. event['job_id']
local announcement = event['type'] == 'document.queued' or ARGV[5] == '1'
if announcement then
  redis.call('HDEL', jk, 'announcing')
end
if event['type'] == 'document.progress' then
  -- A progress event also records the progress on its running job, in the same step:
  -- a snapshot that reads the seq after this event reads this progress too.
  local job = redis.call('HMGET', jk, 'state', 'announcing')
  if job[2] then
    return -1
  end
  if job[1] == 'active' then
    redis.call('HSET', jk, 'progress', string.format('%d', event['progress']), 'stage', event['stage'])
  end
elseif not announcement and redis.call('HEXISTS', jk, 'announcing') == 1 then
  return -1
end
local seq = redis.call('INCR', p .. 'events:seq:' .. user)
event['seq'] = seq
local payload = cjson.encode(event)
-- '%d': Lua's own number-to-text is a floating-point sprintf, several times dearer.
redis.call('XADD', p .. 'events:stream:' .. user, 'MAXLEN', ARGV[4], string.format('%d-0', seq), 'event', payload)
redis.call('PUBLISH', p .. 'events', payload)
return seq
