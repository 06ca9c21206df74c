-- stats.lua - per-tenant state of the queue (not a hot path: admin and the
-- worker's periodic depth report; cost is O(tenants)).
-- KEYS[1]  queue prefix
-- ARGV[1]  max tenants to report
-- Returns records of 10 items per tenant: tenant_id, depth_high,
-- depth_normal, depth_low, oldest_enqueued_at_ns ("0" if none), in_flight,
-- delayed, weight, cap (own; 0 = queue default), queue default cap.
local max = tonumber(ARGV[1])
local defcap = num(redis.call('HGET', P .. 'cfg', 'default_cap'), 0)
local out = {}
local ts = redis.call('SMEMBERS', P .. 'tenants')
table.sort(ts)
for i, t in ipairs(ts) do
	if i > max then break end
	local tk = tkey(t)
	out[#out + 1] = t
	local oldest = nil
	for p = 0, 2 do
		out[#out + 1] = redis.call('LLEN', qkey(t, p))
		local id = redis.call('LINDEX', qkey(t, p), 0)
		if id then
			local e = redis.call('HGET', jkey(id), 'enqueued_at_ns')
			if e and tonumber(e) and (oldest == nil or tonumber(e) < tonumber(oldest)) then oldest = e end
		end
	end
	local f = redis.call('HMGET', tk, 'inflight', 'delayed', 'weight', 'cap')
	out[#out + 1] = oldest or '0'
	out[#out + 1] = num(f[1], 0)
	out[#out + 1] = num(f[2], 0)
	out[#out + 1] = f[3] or '1'
	out[#out + 1] = num(f[4], 0)
	out[#out + 1] = defcap
end
return out
