-- Enqueue jobs: ARGV[2] is '1' to wake idle workers now, '0' when the caller announces
-- the jobs and then wakes workers itself (see Queue::wake_workers); such a job is marked
-- `announcing` until its document.queued is published, and no other event about it is
-- published before that (src/progress/lua/publish.lua). ARGV[3..] are groups of 7
-- (job_id, document_id, user_id, priority, content_type, size_bytes, filename).
-- Idempotent per job id: a job that is already waiting, delayed or active is left as
-- it is (the reconciler and the upload may race).
-- Returns each job's queue position (-1 when it is not waiting).
local announcing = ARGV[2] == '0'
local ids = {}
-- Each new job's fields, written once its position is known, so that one HSET writes
-- the whole hash (the announced position included).
local fresh = {}
local new_ids = {}
for i = 3, #ARGV, 7 do
  local id = ARGV[i]
  local jk = p .. 'job:' .. id
  local state = redis.call('HGET', jk, 'state')
  if not fresh[id] and state ~= 'waiting' and state ~= 'active' and state ~= 'delayed' then
    if state then
      redis.call('ZREM', p .. state, id)
      redis.call('DEL', jk)
    end
    fresh[id] = {i}
    new_ids[#new_ids + 1] = id
  end
  ids[#ids + 1] = id
end
local created = #new_ids
if created > 0 then
  -- The new jobs' arrival numbers, taken in one step: seq - created + 1 .. seq.
  local seq = redis.call('INCRBY', p .. 'seq', created) - created
  for _, id in ipairs(new_ids) do
    local new = fresh[id]
    seq = seq + 1
    new[2] = seq
    place_waiting(id, ARGV[new[1] + 2], ARGV[new[1] + 3], seq)
  end
  waiting_since_now(new_ids)
  redis.call('HINCRBY', p .. 'stats', 'enqueued', int_text(created))
  if not announcing then
    wake(created)
  end
end
local result = positions(ids)
-- The `document.queued` event carries this position: it is announced already.
for n, id in ipairs(ids) do
  local new = fresh[id]
  local jk = p .. 'job:' .. id
  if new then
    fresh[id] = nil
    local i = new[1]
    -- Counts that start at 0 (attempts, failures, stalls) are left out until they move:
    -- every field makes each later read and write of the hash a little slower.
    local fields = {'document_id', ARGV[i + 1], 'user_id', ARGV[i + 2], 'priority', ARGV[i + 3],
      'content_type', ARGV[i + 4], 'size_bytes', ARGV[i + 5], 'filename', ARGV[i + 6], 'state', 'waiting',
      'seq', int_text(new[2]), 'enqueued_at', now_text(),
      'announced_position', int_text(result[n])}
    if announcing then
      fields[#fields + 1] = 'announcing'
      fields[#fields + 1] = '1'
    end
    redis.call('HSET', jk, unpack(fields))
  elseif result[n] > 0 then
    redis.call('HSET', jk, 'announced_position', int_text(result[n]))
  end
end
return result
