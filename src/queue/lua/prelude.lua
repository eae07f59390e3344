-- Shared by every script. All keys start with the prefix in ARGV[1] (<p>); the same
-- names are built in Rust by src/queue/keys.rs, which describes each:
--   job:<id>  queue  waiting_since  vtime  waiting:<user>  users_waiting  seq  wake  paused  stats  throughput:<minute>
--   delayed  active  completed  failed  cancelled  (sorted sets, one per state)
--   hist:types  hist:wait  hist:duration:<type>  eta  (src/queue/statistics.rs)
--   workers  alive:<process>  lock:<task>
--   events  events:seq:<user>  events:stream:<user>  (src/progress/lua)
-- A job lives in the hash <p>job:<id>; while it waits it is in <p>queue (by fair
-- slot), in <p>waiting:<user> (by priority, then arrival) and in <p>waiting_since (by
-- when this wait began, for the oldest waiting job's age).
-- Redis Cluster: KEYS[1] is the prefix too (Queue::invocation passes both). Keys such
-- as <p>job:<id> are known only inside a script, so they cannot all be declared; the
-- prefix carries a hash tag instead ("{docq}:", required in cluster mode), which puts
-- every key above in the slot of the declared KEYS[1], on the node that runs the script.
local p = ARGV[1]

-- The clock, read once per script run: a script is one instant, and TIME is a command.
local now_cache = nil
local function now_ms()
  if not now_cache then
    local t = redis.call('TIME')
    now_cache = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now_cache
end

-- A whole number as text. Every number passed to a command becomes text, and Lua does
-- that with the floating-point '%.14g', which costs more than many a command the
-- number is passed to; '%d' costs a tenth of it.
local function int_text(n)
  return string.format('%d', n)
end

-- The same instant as text, made once.
local now_text_cache = nil
local function now_text()
  now_text_cache = now_text_cache or int_text(now_ms())
  return now_text_cache
end

-- Lower priority first, then arrival: 2^40 arrivals fit below one priority step.
local function waiting_score(priority, seq)
  return tonumber(priority) * 1099511627776 + tonumber(seq)
end

-- The virtual time, read once per script run (only a claim moves it).
local vtime = nil

-- <p>users_waiting holds each waiting user's number of waiting jobs, for the admin's
-- view. A hash, not a sorted set: under 128 members Redis keeps a sorted set as a list
-- that it walks, parsing every score, on each change.
local function count_waiting(user, change)
  if redis.call('HINCRBY', p .. 'users_waiting', user, change) <= 0 then
    redis.call('HDEL', p .. 'users_waiting', user)
  end
end

-- Each user's last waiting job as this script run last saw it: its score in
-- <p>waiting:<user> and its slot in <p>queue. A batch of one user's jobs reads them
-- from Redis once; taking a job out of a user's waiting jobs forgets them.
local last_waiting = {}

-- Fair order: start-time fair queueing (see src/queue/fairness.md). Every waiting job
-- holds a virtual start slot in <p>queue, the one global order of waiting jobs; a claim
-- pops the lowest. A user's new job gets slot max(user's last waiting slot, the
-- virtual time) + 1, the virtual time being the slot of the last claimed job. A user's
-- own jobs hold their slots in their <p>waiting:<user> order (priority, then arrival).
-- When the job began to wait is recorded by add_waiting, or for a batch by
-- waiting_since_now in one command.
local function place_waiting(id, user, priority, seq)
  local wk = p .. 'waiting:' .. user
  local qk = p .. 'queue'
  vtime = vtime or tonumber(redis.call('GET', p .. 'vtime') or 0)
  local score = waiting_score(priority, seq)
  local last = last_waiting[user]
  if not last then
    local found = redis.call('ZRANGE', wk, '-1', '-1', 'WITHSCORES')
    last = {score = tonumber(found[2]), slot = found[1] and tonumber(redis.call('ZSCORE', qk, found[1])) or 0}
  end
  local slot = math.max(last.slot, vtime) + 1
  redis.call('ZADD', wk, int_text(score), id)
  count_waiting(user, '1')
  -- The user's jobs that rank after this one (better-priority arrivals go ahead) each
  -- move one slot later: this job takes the first of their slots, the last of them
  -- takes the new slot. Usually there are none: the job ranks after the user's last.
  if not last.score or last.score < score then
    redis.call('ZADD', qk, int_text(slot), id)
    last_waiting[user] = {score = score, slot = slot}
    return
  end
  local after = redis.call('ZRANGE', wk, int_text(redis.call('ZRANK', wk, id) + 1), '-1')
  local slots = {}
  for i, other in ipairs(after) do
    slots[i] = redis.call('ZSCORE', qk, other)
  end
  slots[#after + 1] = int_text(slot)
  redis.call('ZADD', qk, slots[1], id)
  for i, other in ipairs(after) do
    redis.call('ZADD', qk, slots[i + 1], other)
  end
  last_waiting[user] = {score = last.score, slot = slot}
end

-- Jobs that began to wait now, for the oldest waiting job's age: one command per 500
-- (unpack has a limit of a few thousand values).
local function waiting_since_now(ids)
  local members = {}
  for n, id in ipairs(ids) do
    members[#members + 1] = now_text()
    members[#members + 1] = id
    if n % 500 == 0 or n == #ids then
      redis.call('ZADD', p .. 'waiting_since', unpack(members))
      members = {}
    end
  end
end

-- A job that begins to wait now, alone.
local function add_waiting(id, user, priority, seq)
  place_waiting(id, user, priority, seq)
  waiting_since_now({id})
end

-- Takes a job out of its user's waiting jobs (and the user out of <p>users_waiting with
-- the last one). Returns 1 when it was there.
local function leave_user_waiting(id, user)
  last_waiting[user] = nil
  local removed = redis.call('ZREM', p .. 'waiting:' .. user, id)
  if removed == 1 then
    count_waiting(user, '-1')
  end
  return removed
end

local function remove_waiting(id, user)
  redis.call('ZREM', p .. 'queue', id)
  redis.call('ZREM', p .. 'waiting_since', id)
  return leave_user_waiting(id, user)
end

-- Tells idle workers there is work: one entry per new job, the list capped so it
-- never grows without bound.
local function wake(count)
  local tokens = {}
  for i = 1, math.min(count, 1000) do
    tokens[i] = 'w'
  end
  if #tokens > 0 then
    if redis.call('LPUSH', p .. 'wake', unpack(tokens)) > 1000 then
      redis.call('LTRIM', p .. 'wake', 0, 999)
    end
  end
end

-- A delayed job waits again, at its user's place by priority (fairness.md).
local function promote(id)
  redis.call('ZREM', p .. 'delayed', id)
  local jk = p .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'user_id', 'priority', 'seq')
  if f[1] then
    redis.call('HSET', jk, 'state', 'waiting')
    redis.call('HDEL', jk, 'retry_at')
    add_waiting(id, f[1], f[2], f[3])
    wake(1)
  end
end

-- The jobs deferred until job `id` ended (defer.lua: identical documents that copy its
-- chunks) wait again now. `waiters` is the job's `waiters` field: their ids, by spaces.
local function wake_waiters(id, waiters)
  if not waiters then
    return
  end
  redis.call('HDEL', p .. 'job:' .. id, 'waiters')
  for waiter in string.gmatch(waiters, '%S+') do
    if redis.call('ZSCORE', p .. 'delayed', waiter) then
      promote(waiter)
    end
  end
end

-- Ends a job in `state`. A completed job's duration is kept when `started_at` (ms)
-- is given. The end is counted in <p>stats unless `counted_by_caller` (a caller that
-- ends many jobs counts them in one command). Returns the time it finished (ms).
local function finish(id, state, error_text, started_at, counted_by_caller)
  local jk = p .. 'job:' .. id
  local now = now_ms()
  local fields = {'state', state, 'finished_at', now_text()}
  if error_text and error_text ~= '' then
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = error_text
  end
  if state == 'completed' and started_at and started_at > 0 then
    fields[#fields + 1] = 'duration_ms'
    fields[#fields + 1] = int_text(now - started_at)
  end
  -- The run's token, lease and process stay in the hash: every check of them also
  -- asks for state 'active', and one command less per job is worth three idle fields.
  redis.call('ZREM', p .. 'active', id)
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', p .. state, now_text(), id)
  if not counted_by_caller then
    redis.call('HINCRBY', p .. 'stats', state, '1')
  end
  return now
end

-- How many claims until each waiting job runs (1 = next; -1 = not waiting): its rank
-- in the one global order, exact as long as no new arrival takes an earlier slot.
local function positions(ids)
  local out = {}
  for i, id in ipairs(ids) do
    local rank = redis.call('ZRANK', p .. 'queue', id)
    out[i] = rank and (rank + 1) or -1
  end
  return out
end

-- Whether the queue is paused, and the processes whose liveness key this script run
-- renewed: asked and renewed once per run, however many jobs it claims.
local paused = nil
local renewed = {}
-- The slot of the run's last claim, written to <p>vtime by save_vtime.
local claimed_slot = nil

-- Claim the next job in fair order: the lowest slot of <p>queue, whose slot becomes the
-- virtual time (the script calls save_vtime before it returns). A claim for a process
-- also renews that process's liveness key, so the key exists whenever the process owns
-- a job. Returns what the worker needs of the job (flat field/value pairs, as
-- ClaimedJob::from_fields reads them) or false. Every command here runs once per job,
-- but for the pause check and the liveness key (once per run), and the reply carries
-- only those fields: each field moved between Redis and Lua costs an allocation and a
-- conversion.
local function claim_next(worker, token, lease_ms, process, liveness_ms)
  if paused == nil then
    paused = redis.call('EXISTS', p .. 'paused') == 1
  end
  if paused then
    return false
  end
  while true do
    local popped = redis.call('ZPOPMIN', p .. 'queue')
    local id = popped[1]
    if not id then
      return false
    end
    claimed_slot = popped[2]
    vtime = tonumber(popped[2])
    -- Here, not only in remove_waiting: an id whose job hash is gone must not stay the
    -- "oldest waiting job" for ever.
    redis.call('ZREM', p .. 'waiting_since', id)
    local jk = p .. 'job:' .. id
    local job = redis.call('HMGET', jk, 'user_id', 'document_id', 'content_type', 'size_bytes', 'enqueued_at',
      'attempts', 'stage')
    local user = job[1]
    if user then
      -- Popped from <p>queue and out of <p>waiting_since already.
      leave_user_waiting(id, user)
      local lease_until = int_text(now_ms() + tonumber(lease_ms))
      local attempts = int_text((tonumber(job[6]) or 0) + 1)
      redis.call('HSET', jk, 'state', 'active', 'worker', worker, 'token', token, 'progress', '0',
        'process', process, 'started_at', now_text(), 'lease_until', lease_until, 'attempts', attempts)
      if job[7] then
        redis.call('HDEL', jk, 'stage')
      end
      if process ~= '' and not renewed[process] then
        redis.call('SET', p .. 'alive:' .. process, '1', 'PX', liveness_ms)
        renewed[process] = true
      end
      redis.call('ZADD', p .. 'active', lease_until, id)
      return {'id', id, 'user_id', user, 'document_id', job[2], 'content_type', job[3] or '',
        'size_bytes', job[4] or '0', 'enqueued_at', job[5] or '0', 'attempts', attempts, 'token', token,
        'started_at', now_text()}
    end
  end
end

-- The virtual time after this run's claims.
local function save_vtime()
  if claimed_slot then
    redis.call('SET', p .. 'vtime', claimed_slot)
  end
end
