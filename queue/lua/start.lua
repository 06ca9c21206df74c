-- start.lua - a worker reports that jobs it leased ahead of a free slot
-- (prefetch, dequeue.lua ARGV[6]) have started: they leave the `pf` set,
-- so from now on an expired lease counts their attempt (reap.lua).
-- KEYS[1]  queue prefix
-- then pairs: id, lease token
-- Returns the number of jobs marked started (a lease no longer held is
-- skipped: it was reaped or re-leased).
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return 0 end
local held = redis.call('HMGET', P .. 'lease', unpack(ids))
local started = {}
for i = 1, #ids do
	if held[i] == ARGV[2 * i] then started[#started + 1] = ids[i] end
end
if #started > 0 then redis.call('SREM', P .. 'pf', unpack(started)) end
return #started
