-- start.lua - a worker reports that jobs it leased ahead of a free slot
-- (prefetch, dequeue.lua ARGV[6]) have started: their `pf` mark goes, so
-- from now on an expired lease counts their attempt (reap.lua).
-- KEYS[1]  queue prefix
-- then pairs: id, lease token
-- Returns the number of jobs marked started (a lease no longer held is
-- skipped: it was reaped or re-leased).
local n = 0
for i = 1, #ARGV, 2 do
	local jk = jkey(ARGV[i])
	if redis.call('HGET', jk, 'lease') == ARGV[i + 1] then
		redis.call('HDEL', jk, 'pf')
		n = n + 1
	end
end
return n
