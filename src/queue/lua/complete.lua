-- End jobs their workers own as completed or cancelled, or failed for good, and for
-- each, when asked, claim its worker's next job in the same step: one round trip per
-- job, shared by the endings that met in this process (src/queue/endings.rs).
-- ARGV: prefix, then one group of 9 per ending: job_id, token, state, error, then for
-- the next claim: worker_id ('' for no claim), token, lease_ms, process,
-- process_liveness_ms.
-- Returns one reply per ending: {'0'} when the token no longer owns the job (the lease
-- was lost and the job moved on: nothing is changed then), {'E', error} when ending it
-- failed, else {'1', finished_at} followed by the next job's fields. Histogram and ETA
-- figures are summed up by the caller's process (src/queue/statistics.rs).
local replies = {}
local ended = {}
local finished_at = nil

-- One ending, and the claim it asks for. Its reply is {'0'} or {'1', ...}.
local function end_one(g)
  local id, token, state = ARGV[g], ARGV[g + 1], ARGV[g + 2]
  local owner = redis.call('HMGET', p .. 'job:' .. id, 'state', 'token', 'started_at', 'waiters')
  if owner[1] ~= 'active' or owner[2] ~= token then
    return {'0'}
  end
  finished_at = finish(id, state, ARGV[g + 3], tonumber(owner[3] or 0), true)
  ended[state] = (ended[state] or 0) + 1
  wake_waiters(id, owner[4])
  local reply = {'1', finished_at}
  if ARGV[g + 4] ~= '' then
    local next_job = claim_next(ARGV[g + 4], ARGV[g + 5], ARGV[g + 6], ARGV[g + 7], ARGV[g + 8])
    if next_job then
      for i, field in ipairs(next_job) do
        reply[i + 2] = field
      end
    end
  end
  return reply
end

-- An ending that raises an error gets {'E', error} and the others go on: a run's writes
-- stay when it fails, so the endings before it, and the counts below, must be kept.
for g = 2, #ARGV, 9 do
  local ok, reply = pcall(end_one, g)
  if not ok then
    reply = {'E', type(reply) == 'table' and (reply.err or '') or tostring(reply)}
  end
  replies[#replies + 1] = reply
end
save_vtime()
for state, count in pairs(ended) do
  redis.call('HINCRBY', p .. 'stats', state, int_text(count))
end
local completed = ended.completed
if completed then
  -- Completions per minute, for throughput over the last 1/5/15 minutes.
  local minute_key = p .. 'throughput:' .. int_text(math.floor(finished_at / 60000))
  if redis.call('INCRBY', minute_key, int_text(completed)) == completed then
    redis.call('EXPIRE', minute_key, 3600)
  end
end
return replies
