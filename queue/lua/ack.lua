-- ack.lua - settle a batch of leased jobs (success, failure, release).
-- KEYS[1]  queue prefix
-- ARGV[1]  per-job overhead in ms added to every charged duration
-- then 8 items per job:
--   id, lease token, outcome ("ok" | "fail" | "release" | "dead"),
--   duration_ms (actual handler time), retry delay_ms, error text,
--   tenant_id and cost_est as the lease returned them
-- Returns one status per job: "ok" | "stale" | "retry" | "dead" | "released".
-- A token that no longer matches (the lease expired and the job was
-- re-leased) changes nothing: "stale".
-- Fairness: the tenant was charged cost_est at dequeue; the difference
-- to the actual duration is applied to its pass now, and the estimate
-- (an EWMA of actual durations) is updated.
-- Cost: a batch of successes makes no per-job call (the tokens are read
-- with one HMGET, the job hashes deleted with one DEL); only the rare
-- outcomes read the job document (priority, attempt, max_attempts).
local PER = 8
local overhead = tonumber(ARGV[1])
local now = now_ms()
if not overhead or (#ARGV - 1) % PER ~= 0 then
	return redis.error_reply('ERR jobq: ack: bad arguments')
end
local nj = (#ARGV - 1) / PER
local res = {}
if nj == 0 then return res end
-- Read first: a key of the wrong type fails the call before any write.
local ids = {}
for i = 1, nj do ids[i] = ARGV[2 + (i - 1) * PER] end
local held = redis.call('HMGET', P .. 'lease', unpack(ids))
redis.call('SCARD', P .. 'pf')
redis.call('ZCARD', P .. 'leases')
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
for i = 1, nj do
	local b = 2 + (i - 1) * PER
	local id, token, outcome = ARGV[b], ARGV[b + 1], ARGV[b + 2]
	-- The token and the leases entry are added and removed together
	-- (dequeue, here, the reaper, dead-lettering), so a matching token is
	-- a live lease.
	if held[i] ~= token then
		res[i] = 'stale'
	else
		local jk = jkey(id)
		local t, f = ARGV[b + 6], nil
		if outcome ~= 'ok' then
			f = redis.pcall('HMGET', jk, 'tenant_id', 'priority', 'attempt', 'max_attempts')
			if type(f) ~= 'table' or f.err then f = {} end
			t = f[1] or t
		end
		local s = tstate(t)
		settled[#settled + 1] = id
		s.done = s.done + 1
		local charge = 0
		if outcome ~= 'release' then
			charge = (tonumber(ARGV[b + 3]) or 0) + overhead
			if s.cost == nil then s.cost = charge else s.cost = 0.8 * s.cost + 0.2 * charge end
			s.costdirty = true
		end
		s.delta = s.delta + (charge - num(ARGV[b + 7], 0)) / s.w
		if outcome == 'ok' then
			finished[#finished + 1] = jk
			res[i] = 'ok'
		elseif outcome == 'release' then
			-- This lease's attempt was never written (dequeue.lua), so
			-- there is nothing to give back.
			redis.call('LPUSH', qkey(t, PRIO[f[2] or ''] or 1), id)
			res[i] = 'released'
		else
			local attempt, err = num(f[3], 0) + 1, ARGV[b + 5]
			if outcome == 'fail' and attempt < num(f[4], 1) then
				redis.pcall('HSET', jk, 'attempt', attempt, 'last_error', utf8_head(err, 128))
				redis.call('ZADD', P .. 'delayed', now + (tonumber(ARGV[b + 4]) or 0), id)
				s.retried = s.retried + 1
				res[i] = 'retry'
			else
				redis.pcall('HSET', jk, 'attempt', attempt)
				bury(id, err, now)
				res[i] = 'dead'
			end
		end
	end
end
if #settled > 0 then
	redis.call('ZREM', P .. 'leases', unpack(settled))
	redis.call('HDEL', P .. 'lease', unpack(settled))
	redis.call('SREM', P .. 'pf', unpack(settled))
end
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
