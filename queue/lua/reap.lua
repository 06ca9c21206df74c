-- reap.lua - return jobs whose lease expired (worker died or stalled) to the
-- head of their ready queue; a job that used its last attempt is
-- dead-lettered instead.
-- KEYS[1]  queue prefix
-- ARGV[1]  max jobs per call
-- Returns records of 5 items: kind ("r" reaped | "d" dead-lettered), id,
-- tenant_id, type, attempt.
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
	redis.call('ZREM', P .. 'leases', id)
	local jk = jkey(id)
	local f = redis.call('HMGET', jk, 'tenant_id', 'type', 'priority', 'attempt', 'max_attempts')
	if f[1] then
		local t = f[1]
		redis.call('HDEL', jk, 'lease')
		if redis.call('HINCRBY', tkey(t), 'inflight', -1) < 0 then redis.call('HSET', tkey(t), 'inflight', 0) end
		local attempt = num(f[4], 1)
		if attempt >= num(f[5], 1) then
			bury(id, 'lease expired on attempt ' .. attempt, now)
			out[#out + 1] = 'd'
		else
			redis.call('LPUSH', qkey(t, PRIO[f[3] or ''] or 1), id)
			out[#out + 1] = 'r'
		end
		out[#out + 1] = id
		out[#out + 1] = t
		out[#out + 1] = f[2] or '?'
		out[#out + 1] = attempt
		activate(t)
	end
end
return out
