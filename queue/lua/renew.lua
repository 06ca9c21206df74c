-- renew.lua - extend the leases of running jobs.
-- KEYS[1]  queue prefix
-- ARGV[1]  lease length in ms from now
-- then pairs: id, lease token
-- Returns one integer per job: 1 renewed, 0 lease lost (expired and reaped
-- or re-leased; the worker's ack will be answered "stale").
local deadline = now_ms() + tonumber(ARGV[1])
local res = {}
for i = 2, #ARGV, 2 do
	local id, token = ARGV[i], ARGV[i + 1]
	if redis.call('HGET', P .. 'lease', id) == token and
		redis.call('ZSCORE', P .. 'leases', id) then
		redis.call('ZADD', P .. 'leases', 'XX', deadline, id)
		res[#res + 1] = 1
	else
		res[#res + 1] = 0
	end
end
return res
