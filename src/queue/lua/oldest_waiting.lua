-- The job that has waited longest for a worker: the lowest score of <p>waiting_since.
-- Its age is measured by Redis's clock, the one that scored it. ARGV: prefix.
-- Returns {job_id, waited_ms} or nil when nothing waits.
local oldest = redis.call('ZRANGE', p .. 'waiting_since', 0, 0, 'WITHSCORES')
if #oldest == 0 then
  return false
end
return {oldest[1], now_ms() - tonumber(oldest[2])}
