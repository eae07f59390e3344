-- Record the queue positions announced to users; answers which changed since the last
-- announcement, so each change is announced once however many processes look.
-- ARGV: prefix, then pairs of (job_id, position). Returns 1/0 per pair.
local out = {}
for i = 2, #ARGV, 2 do
  local jk = p .. 'job:' .. ARGV[i]
  local changed = 0
  if redis.call('HGET', jk, 'state') == 'waiting' and redis.call('HGET', jk, 'announced_position') ~= ARGV[i + 1] then
    redis.call('HSET', jk, 'announced_position', ARGV[i + 1])
    changed = 1
  end
  table.insert(out, changed)
end
return out
