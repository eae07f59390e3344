-- Queue positions of several jobs (1 = claimed next, -1 = not waiting).
-- ARGV: prefix, job ids…
local out = {}
for i = 2, #ARGV do
  table.insert(out, position(ARGV[i]))
end
return out
