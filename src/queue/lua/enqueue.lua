-- Enqueue jobs: ARGV[2] is '1' to wake idle workers now, '0' when the caller announces
-- the jobs and then wakes workers itself (see Queue::wake_workers); such a job is marked
-- `announcing` until its document.queued is published, and no other event about it is
-- published before that (src/progress/lua/publish.lua). ARGV[3..] are groups of 7
-- (job_id, document_id, user_id, priority, content_type, size_bytes, filename).
-- Idempotent per job id: a job that is already waiting, delayed or active is left as
-- it is (the reconciler and the upload may race).
-- Returns each job's queue position (-1 when it is not waiting).
local now = now_ms()
local created = 0
local ids = {}
for i = 3, #ARGV, 7 do
  local id, document_id, user = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local priority, content_type, size, filename = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local jk = p .. 'job:' .. id
  local state = redis.call('HGET', jk, 'state')
  if state ~= 'waiting' and state ~= 'active' and state ~= 'delayed' then
    if state then
      redis.call('ZREM', p .. state, id)
      redis.call('DEL', jk)
    end
    local seq = redis.call('INCR', p .. 'seq')
    local fields = {'id', id, 'document_id', document_id, 'user_id', user,
      'priority', priority, 'content_type', content_type, 'size_bytes', size, 'filename', filename,
      'state', 'waiting', 'attempts', 0, 'failures', 0, 'stalls', 0, 'seq', seq,
      'enqueued_at', now}
    if ARGV[2] == '0' then
      table.insert(fields, 'announcing')
      table.insert(fields, 1)
    end
    redis.call('HSET', jk, unpack(fields))
    add_waiting(id, user, priority, seq, now)
    created = created + 1
  end
  table.insert(ids, id)
end
if created > 0 then
  redis.call('HINCRBY', p .. 'stats', 'enqueued', created)
  if ARGV[2] == '1' then
    wake(created)
  end
end
local result = positions(ids)
-- The `document.queued` event carries this position: it is announced already.
for i, id in ipairs(ids) do
  if result[i] > 0 then
    redis.call('HSET', p .. 'job:' .. id, 'announced_position', result[i])
  end
end
return result
