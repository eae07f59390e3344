-- Wakes up to ARGV[2] idle workers (see wake in prelude.lua).
wake(tonumber(ARGV[2]))
