-- Publish one event to its user: stamp it with the user's next sequence number, keep
-- it in the user's bounded stream (for resume) and broadcast it to every process.
-- ARGV: prefix, user_id, event JSON (without seq), stream max length. Returns the seq.
-- KEYS[1]: the prefix, declared for Redis Cluster (see src/queue/lua/prelude.lua).
-- (Keys: see src/queue/keys.rs.)
-- Keys: <p>events:seq:<user> and <p>events:stream:<user>. The kind comes before the
-- user id, so no user id (say "seq:bob") can name another user's key.
local p, user = ARGV[1], ARGV[2]
local event = cjson.decode(ARGV[3])
-- A progress event also records the progress on its running job, in the same step: a
-- snapshot that reads the seq after this event reads this progress too.
if event['type'] == 'document.progress' then
  local jk = p .. 'job:' .. event['job_id']
  if redis.call('HGET', jk, 'state') == 'active' then
    redis.call('HSET', jk, 'progress', event['progress'], 'stage', event['stage'])
  end
end
local seq = redis.call('INCR', p .. 'events:seq:' .. user)
event['seq'] = seq
local payload = cjson.encode(event)
redis.call('XADD', p .. 'events:stream:' .. user, 'MAXLEN', ARGV[4], seq .. '-0', 'event', payload)
redis.call('PUBLISH', p .. 'events', payload)
return seq
