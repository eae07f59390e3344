-- The user's seq as a snapshot reports it: the last event's; for a user with no
-- sequence yet, a new one, started as publish.lua starts one (Redis's time in
-- microseconds), so that the first event after the snapshot is its seq + 1 and a
-- client that watches for holes in the seqs sees none.
-- ARGV: prefix, user_id. Returns the seq as text.
-- KEYS[1]: the prefix, declared for Redis Cluster (see src/queue/lua/prelude.lua).
local seq_key = ARGV[1] .. 'events:seq:' .. ARGV[2]
local seq = redis.call('GET', seq_key)
if not seq then
  local t = redis.call('TIME')
  seq = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
  redis.call('SET', seq_key, seq)
end
return seq
