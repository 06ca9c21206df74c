-- ack.lua - settle a batch of leased jobs (success, failure, release).
-- KEYS[1]  queue prefix
-- ARGV[1]  per-job overhead in ms added to every charged duration
-- then 6 items per job:
--   id, lease token, outcome ("ok" | "fail" | "release" | "dead"),
--   duration_ms (actual handler time), retry delay_ms, error text
-- Returns one status per job: "ok" | "stale" | "retry" | "dead" | "released".
-- A token that no longer matches (the lease expired and the job was
-- re-leased) changes nothing: "stale".
-- Fairness: the tenant was charged an estimate at dequeue; the difference
-- to the actual duration is applied to its pass now, and the estimate
-- (an EWMA of actual durations) is updated.
local overhead = tonumber(ARGV[1])
local now = now_ms()
local res = {}
for i = 2, #ARGV, 6 do
	local id, token, outcome = ARGV[i], ARGV[i + 1], ARGV[i + 2]
	local dur, delay, err = tonumber(ARGV[i + 3]) or 0, tonumber(ARGV[i + 4]) or 0, ARGV[i + 5]
	local jk = jkey(id)
	local f = redis.call('HMGET', jk, 'lease', 'tenant_id', 'priority', 'attempt',
		'max_attempts', 'cost_est')
	if f[1] ~= token or not redis.call('ZSCORE', P .. 'leases', id) then
		res[#res + 1] = 'stale'
	else
		local t = f[2]
		local tk = tkey(t)
		redis.call('ZREM', P .. 'leases', id)
		redis.call('HDEL', jk, 'lease')
		if redis.call('HINCRBY', tk, 'inflight', -1) < 0 then redis.call('HSET', tk, 'inflight', 0) end
		local w = num(redis.call('HGET', tk, 'weight'), 1)
		if w <= 0 then w = 1 end
		local est = num(f[6], 0)
		local charge = 0
		if outcome ~= 'release' then
			charge = dur + overhead
			local c = tonumber(redis.call('HGET', tk, 'cost'))
			if c == nil then c = charge else c = 0.8 * c + 0.2 * charge end
			redis.call('HSET', tk, 'cost', c)
		end
		local delta = (charge - est) / w
		if delta ~= 0 then
			redis.call('HSET', tk, 'pass', num(redis.call('HGET', tk, 'pass'), 0) + delta)
			if redis.call('ZSCORE', P .. 'ready', t) then
				redis.call('ZINCRBY', P .. 'ready', delta, t)
			end
		end
		local attempt, maxa = num(f[4], 1), num(f[5], 1)
		if outcome == 'ok' then
			redis.call('DEL', jk)
			res[#res + 1] = 'ok'
		elseif outcome == 'release' then
			redis.call('HSET', jk, 'attempt', attempt > 0 and attempt - 1 or 0)
			redis.call('LPUSH', qkey(t, PRIO[f[3]] or 1), id)
			res[#res + 1] = 'released'
		elseif outcome == 'fail' and attempt < maxa then
			redis.call('HSET', jk, 'last_error', string.sub(err, 1, 128))
			redis.call('ZADD', P .. 'delayed', now + delay, id)
			redis.call('HINCRBY', tk, 'delayed', 1)
			wake()
			res[#res + 1] = 'retry'
		else
			bury(id, err, now)
			res[#res + 1] = 'dead'
		end
		activate(t)
	end
end
return res
