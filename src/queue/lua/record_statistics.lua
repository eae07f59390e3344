-- Adds one process's summed-up statistics (src/queue/statistics.rs) to the shared
-- ones. ARGV[2]: JSON {histograms = {name = {bucket = count, sum = seconds}},
-- types = [content type], eta = {field = [observations, mean ms per KiB]}}.
local s = cjson.decode(ARGV[2])
for name, buckets in pairs(s.histograms) do
  local key = p .. 'hist:' .. name
  for bucket, n in pairs(buckets) do
    if bucket == 'sum' then
      redis.call('HINCRBYFLOAT', key, 'sum', n)
    else
      redis.call('HINCRBY', key, bucket, n)
    end
  end
end
if #s.types > 0 then
  redis.call('SADD', p .. 'hist:types', unpack(s.types))
end
-- Each observation weighs 0.2 in the moving average, as when they came one by one.
for field, e in pairs(s.eta) do
  local previous = tonumber(redis.call('HGET', p .. 'eta', field))
  local keep = 0.8 ^ e[1]
  local average = previous and (previous * keep + e[2] * (1 - keep)) or e[2]
  redis.call('HSET', p .. 'eta', field, tostring(average))
end
