-- The events a client missed since `since`, in order; or 'gap' when some of them are
-- no longer kept (trimmed, or the sequence restarted), so the client needs a snapshot.
-- ARGV: prefix, user_id, since. Returns {'events', payload…} or {'gap'}.
-- KEYS[1]: the prefix, declared for Redis Cluster (see src/queue/lua/prelude.lua).
local p, user, since = ARGV[1], ARGV[2], tonumber(ARGV[3])
local current = tonumber(redis.call('GET', p .. 'events:seq:' .. user) or 0)
if since > current then
  return {'gap'}
end
if since == current then
  return {'events'}
end
local stream = p .. 'events:stream:' .. user
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
if not first or tonumber(string.match(first[1], '^(%d+)')) > since + 1 then
  return {'gap'}
end
local out = {'events'}
-- The seq as text from ARGV: Lua writes a number of 16 digits in exponent form.
for _, entry in ipairs(redis.call('XRANGE', stream, '(' .. ARGV[3] .. '-0', '+')) do
  table.insert(out, entry[2][2])
end
return out
