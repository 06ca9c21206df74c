-- reap.lua - return jobs whose lease expired (worker died or stalled) to the
-- head of their ready queue; a job that used its last attempt is
-- dead-lettered instead. A job leased ahead of a free slot (prefetch, in
-- the `pf` set) that was never reported started did not run: its attempt
-- is not counted, and it counts a stall instead; STALL_MAX stalls
-- dead-letter it (a job that kills its worker before the start is reported
-- still ends there). The document's `attempt` counts attempts that ran (or
-- may have): a lease's attempt is written only here and when it is settled
-- as a failure (dequeue.lua does not write it).
-- KEYS[1]  queue prefix
-- ARGV[1]  max jobs per call
-- Returns records of 5 items: kind, id, tenant_id, type, attempt, where kind
-- is "r" (returned, the attempt counted), "u" (returned unstarted, attempt
-- not counted), "d" (dead-lettered: that was the last attempt) or "s"
-- (dead-lettered: STALL_MAX leases expired before it started); attempt is
-- the number of attempts that ran (or may have).
local STALL_MAX = 10
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
	redis.call('ZREM', P .. 'leases', id)
	redis.call('HDEL', P .. 'lease', id)
	local unstarted = redis.call('SREM', P .. 'pf', id) == 1
	local jk = jkey(id)
	local f = redis.call('HMGET', jk, 'tenant_id', 'type', 'priority', 'attempt', 'max_attempts')
	if f[1] then
		local t = f[1]
		local kind
		if redis.call('HINCRBY', tkey(t), 'inflight', -1) < 0 then redis.call('HSET', tkey(t), 'inflight', 0) end
		local attempt = num(f[4], 0)
		if unstarted then
			local stalls = redis.call('HINCRBY', jk, 'stalls', 1)
			if stalls >= STALL_MAX then
				bury(id, 'lease expired ' .. stalls .. ' times before the job started', now)
				kind = 's'
			else
				kind = 'u'
			end
		else
			attempt = attempt + 1
			redis.call('HSET', jk, 'attempt', attempt)
			if attempt >= num(f[5], 1) then
				bury(id, 'lease expired on attempt ' .. attempt, now)
				kind = 'd'
			else
				kind = 'r'
			end
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
