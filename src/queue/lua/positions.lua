-- Queue positions of several jobs (1 = claimed next, -1 = not waiting).
-- ARGV: prefix, job ids…
local ids = {}
for i = 2, #ARGV do
  table.insert(ids, ARGV[i])
end
return positions(ids)
