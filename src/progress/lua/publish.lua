-- Publish events to one user, in order: stamp each with the user's next sequence
-- number, keep it in the user's bounded stream (for resume) and broadcast it to every
-- process. Several events go in one call where they are ready together (an upload's
-- announcements, a short document's stage changes): one round trip, one script run.
-- ARGV: prefix, user_id, stream max length, '1' to publish even about a job whose
-- document.queued has not been published yet, then 6 per event: its type, job id,
-- progress and stage (empty unless document.progress), and its JSON cut in two where
-- the seq goes. The JSON is joined, not decoded and encoded again: cjson cost more
-- Redis time per event than all of its commands together.
-- Returns each published event's seq, in order. An event held back for that reason
-- ends the list with -1, and the events after it are not published either: the
-- uploader announces its jobs after enqueueing them (the announcement carries the
-- position), and a busy worker can claim one in between; the caller publishes the rest
-- again a moment later, so the owner never hears of a job's progress, or its end,
-- before it heard it was queued.
-- KEYS[1]: the prefix, declared for Redis Cluster (see src/queue/lua/prelude.lua).
-- (Keys: see src/queue/keys.rs.)
-- Keys: <p>events:seq:<user> and <p>events:stream:<user>. The kind comes before the
-- user id, so no user id (say "seq:bob") can name another user's key.
local p, user, max_len, force = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local seq_key, stream = p .. 'events:seq:' .. user, p .. 'events:stream:' .. user
local seqs = {}
for i = 5, #ARGV, 6 do
  local kind, job_id, progress, stage = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = p .. 'job:' .. job_id
  local announcement = kind == 'document.queued' or force
  if announcement then
    redis.call('HDEL', jk, 'announcing')
  end
  if kind == 'document.progress' then
    -- A progress event also records the progress on its running job, in the same step:
    -- a snapshot that reads the seq after this event reads this progress too.
    local job = redis.call('HMGET', jk, 'state', 'announcing')
    if job[2] then
      seqs[#seqs + 1] = -1
      return seqs
    end
    if job[1] == 'active' then
      redis.call('HSET', jk, 'progress', progress, 'stage', stage)
    end
  elseif not announcement and redis.call('HEXISTS', jk, 'announcing') == 1 then
    seqs[#seqs + 1] = -1
    return seqs
  end
  local seq = redis.call('INCR', seq_key)
  if seq == 1 then
    -- A new sequence: a new user, or Redis lost its data. It starts at the time in
    -- microseconds, above any earlier sequence of the user (no user has a million events
    -- a second), so that a socket still open, which drops what is not above what it
    -- last sent, hears the new events, and a client resuming from an old seq gets a gap.
    -- (A snapshot starts one the same way: snapshot_seq.lua.)
    local t = redis.call('TIME')
    seq = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('SET', seq_key, string.format('%d', seq))
  end
  -- '%d': Lua's own number-to-text is a floating-point sprintf, several times dearer.
  local seq_text = string.format('%d', seq)
  local payload = ARGV[i + 4] .. seq_text .. ARGV[i + 5]
  redis.call('XADD', stream, 'MAXLEN', max_len, seq_text .. '-0', 'event', payload)
  redis.call('PUBLISH', p .. 'events', payload)
  seqs[#seqs + 1] = seq
end
return seqs
