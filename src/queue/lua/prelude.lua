-- Shared by every script. All keys start with the prefix in ARGV[1] (<p>); the same
-- names are built in Rust by src/queue/keys.rs, which describes each:
--   job:<id>  waiting:<user>  ring  seq  wake  paused  stats  throughput:<minute>
--   delayed  active  completed  failed  cancelled  (sorted sets, one per state)
--   hist:types  hist:wait  hist:duration:<type>  eta  workers  lock:<task>
--   events  events:seq:<user>  events:stream:<user>  (src/progress/lua)
-- A job lives in the hash <p>job:<id>, waits in <p>waiting:<user> (scored by
-- priority, then arrival), and <p>ring lists the users that have waiting jobs, in
-- claim order.
local p = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Lower priority first, then arrival: 2^40 arrivals fit below one priority step.
local function waiting_score(priority, seq)
  return tonumber(priority) * 1099511627776 + tonumber(seq)
end

local function add_waiting(id, user, priority, seq)
  local wk = p .. 'waiting:' .. user
  if redis.call('ZCARD', wk) == 0 then
    redis.call('RPUSH', p .. 'ring', user)
  end
  redis.call('ZADD', wk, waiting_score(priority, seq), id)
end

local function remove_waiting(id, user)
  local wk = p .. 'waiting:' .. user
  local removed = redis.call('ZREM', wk, id)
  if removed == 1 and redis.call('ZCARD', wk) == 0 then
    redis.call('LREM', p .. 'ring', 0, user)
  end
  return removed
end

-- Tells idle workers there is work: one entry per new job, the list capped so it
-- never grows without bound.
local function wake(count)
  local tokens = {}
  for i = 1, math.min(count, 1000) do
    tokens[i] = 'w'
  end
  if #tokens > 0 then
    redis.call('LPUSH', p .. 'wake', unpack(tokens))
    redis.call('LTRIM', p .. 'wake', 0, 999)
  end
end

local function finish(id, state, error_text)
  local jk = p .. 'job:' .. id
  local now = now_ms()
  redis.call('ZREM', p .. 'active', id)
  redis.call('HSET', jk, 'state', state, 'finished_at', now)
  if error_text and error_text ~= '' then
    redis.call('HSET', jk, 'error', error_text)
  end
  redis.call('HDEL', jk, 'token', 'lease_until')
  redis.call('ZADD', p .. state, now, id)
  redis.call('HINCRBY', p .. 'stats', state, 1)
end

-- How many claims until each waiting job runs (1 = next; -1 = not waiting). The claim
-- serves the ring's users in turn, one job each, so a job of rank r in its user's queue
-- waits for up to r+1 jobs of each user ahead of its user in the ring and up to r of
-- each user after. The ring is read once for all the ids.
local function positions(ids)
  local ring = redis.call('LRANGE', p .. 'ring', 0, -1)
  local sizes, order = {}, {}
  for i, user in ipairs(ring) do
    sizes[i] = redis.call('ZCARD', p .. 'waiting:' .. user)
    order[user] = i
  end
  local out = {}
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', p .. 'job:' .. id, 'state', 'user_id')
    local rank = f[1] == 'waiting' and redis.call('ZRANK', p .. 'waiting:' .. f[2], id)
    local mine = rank and order[f[2]]
    if not mine then
      table.insert(out, -1)
    else
      local pos = rank + 1
      for i, n in ipairs(sizes) do
        if i < mine then
          pos = pos + math.min(n, rank + 1)
        elseif i > mine then
          pos = pos + math.min(n, rank)
        end
      end
      table.insert(out, pos)
    end
  end
  return out
end

local function job_fields(id)
  return redis.call('HGETALL', p .. 'job:' .. id)
end

-- Histograms kept in Redis so every process reports the same figures: a hash of
-- bucket -> count (not cumulative) plus sum and count. Bounds in seconds.
local HISTOGRAM_BOUNDS = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

local function observe(key, seconds)
  local bucket = '+Inf'
  for _, bound in ipairs(HISTOGRAM_BOUNDS) do
    if seconds <= bound then
      bucket = tostring(bound)
      break
    end
  end
  redis.call('HINCRBY', key, bucket, 1)
  redis.call('HINCRBYFLOAT', key, 'sum', seconds)
  redis.call('HINCRBY', key, 'count', 1)
end
