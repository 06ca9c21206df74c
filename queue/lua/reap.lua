-- reap.lua - return jobs whose lease expired (worker died or stalled) to the
-- head of their ready queue; a job that used its last attempt is
-- dead-lettered instead. A job leased ahead of a free slot (prefetch, field
-- `pf`) that was never reported started did not run: it gets its attempt
-- back, and counts a stall instead; STALL_MAX stalls dead-letter it (a job
-- that kills its worker before the start is reported still ends there).
-- KEYS[1]  queue prefix
-- ARGV[1]  max jobs per call
-- Returns records of 5 items: kind, id, tenant_id, type, attempt, where kind
-- is "r" (returned, the attempt counted), "u" (returned unstarted, attempt
-- given back), "d" (dead-lettered: that was the last attempt) or "s"
-- (dead-lettered: STALL_MAX leases expired before it started); attempt is
-- the number of attempts that ran (or may have).
local STALL_MAX = 10
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
	redis.call('ZREM', P .. 'leases', id)
	local jk = jkey(id)
	local f = redis.call('HMGET', jk, 'tenant_id', 'type', 'priority', 'attempt', 'max_attempts', 'pf')
	if f[1] then
		local t = f[1]
		local kind
		redis.call('HDEL', jk, 'lease', 'pf')
		if redis.call('HINCRBY', tkey(t), 'inflight', -1) < 0 then redis.call('HSET', tkey(t), 'inflight', 0) end
		local attempt = num(f[4], 1)
		if f[6] then
			attempt = attempt > 0 and attempt - 1 or 0
			redis.call('HSET', jk, 'attempt', attempt)
			local stalls = redis.call('HINCRBY', jk, 'stalls', 1)
			if stalls >= STALL_MAX then
				bury(id, 'lease expired ' .. stalls .. ' times before the job started', now)
				kind = 's'
			else
				kind = 'u'
			end
		elseif attempt >= num(f[5], 1) then
			bury(id, 'lease expired on attempt ' .. attempt, now)
			kind = 'd'
		else
			kind = 'r'
		end
		if kind == 'r' or kind == 'u' then
			redis.call('LPUSH', qkey(t, PRIO[f[3] or ''] or 1), id)
		end
		out[#out + 1] = kind
		out[#out + 1] = id
		out[#out + 1] = t
		out[#out + 1] = f[2] or '?'
		out[#out + 1] = attempt
		activate(t)
	end
end
return out
