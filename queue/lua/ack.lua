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
-- Per-tenant effects are accumulated and applied once per tenant.
local tc, touched = {}, {}
local function tstate(t)
	local s = tc[t]
	if s then return s end
	local f = redis.call('HMGET', tkey(t), 'weight', 'cost')
	s = { w = num(f[1], 1), cost = tonumber(f[2]), delta = 0, done = 0, retried = 0 }
	if s.w <= 0 then s.w = 1 end
	tc[t] = s
	touched[#touched + 1] = t
	return s
end
local settled, finished = {}, {}
for i = 2, #ARGV, 6 do
	local id, token, outcome = ARGV[i], ARGV[i + 1], ARGV[i + 2]
	local dur, delay, err = tonumber(ARGV[i + 3]) or 0, tonumber(ARGV[i + 4]) or 0, ARGV[i + 5]
	local jk = jkey(id)
	local f = redis.call('HMGET', jk, 'lease', 'tenant_id', 'priority', 'attempt',
		'max_attempts', 'cost_est')
	-- The lease field and the leases entry are removed together (here,
	-- by the reaper, at dead-lettering), so a matching token is a live lease.
	if f[1] ~= token or not f[2] then
		res[#res + 1] = 'stale'
	else
		local t = f[2]
		local s = tstate(t)
		settled[#settled + 1] = id
		s.done = s.done + 1
		local est = num(f[6], 0)
		local charge = 0
		if outcome ~= 'release' then
			charge = dur + overhead
			if s.cost == nil then s.cost = charge else s.cost = 0.8 * s.cost + 0.2 * charge end
			s.costdirty = true
		end
		s.delta = s.delta + (charge - est) / s.w
		local attempt, maxa = num(f[4], 1), num(f[5], 1)
		if outcome == 'ok' then
			finished[#finished + 1] = jk
			res[#res + 1] = 'ok'
		elseif outcome == 'release' then
			redis.call('HSET', jk, 'attempt', attempt > 0 and attempt - 1 or 0)
			redis.call('HDEL', jk, 'lease', 'pf')
			redis.call('LPUSH', qkey(t, PRIO[f[3]] or 1), id)
			res[#res + 1] = 'released'
		elseif outcome == 'fail' and attempt < maxa then
			redis.call('HSET', jk, 'last_error', utf8_head(err, 128))
			redis.call('HDEL', jk, 'lease', 'pf')
			redis.call('ZADD', P .. 'delayed', now + delay, id)
			s.retried = s.retried + 1
			res[#res + 1] = 'retry'
		else
			bury(id, err, now)
			res[#res + 1] = 'dead'
		end
	end
end
if #settled > 0 then redis.call('ZREM', P .. 'leases', unpack(settled)) end
if #finished > 0 then redis.call('DEL', unpack(finished)) end
for _, t in ipairs(touched) do
	local s, tk = tc[t], tkey(t)
	if redis.call('HINCRBY', tk, 'inflight', -s.done) < 0 then redis.call('HSET', tk, 'inflight', 0) end
	if s.costdirty then redis.call('HSET', tk, 'cost', s.cost) end
	if s.retried > 0 then
		redis.call('HINCRBY', tk, 'delayed', s.retried)
		wake()
	end
	if s.delta ~= 0 then
		redis.call('HSET', tk, 'pass', num(redis.call('HGET', tk, 'pass'), 0) + s.delta)
		if redis.call('ZSCORE', P .. 'ready', t) then
			redis.call('ZINCRBY', P .. 'ready', s.delta, t)
		end
	end
	activate(t)
end
return res
