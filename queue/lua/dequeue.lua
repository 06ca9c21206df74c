-- dequeue.lua - lease up to N jobs, chosen by weighted start-time fair
-- queuing across tenants and by priority (with aging) within a tenant.
-- Also promotes due delayed jobs first.
-- KEYS[1]  queue prefix
-- ARGV[1]  max jobs to lease (>= 1)
-- ARGV[2]  lease length in ms
-- ARGV[3]  lease token prefix (random per call; token = prefix .. ":" .. i)
-- ARGV[4]  aging_ms (0 = strict priority)
-- ARGV[5]  default cost in ms for a tenant without a duration estimate
-- ARGV[6]  jobs leased for free handler slots (0..ARGV[1]; absent: all). The
--          jobs after them are leased ahead of a free slot (prefetch): they
--          are marked `pf` until the worker reports them started
--          (start.lua), so a lease that expires before they started gives
--          their attempt back (reap.lua). A tenant with a concurrency cap is
--          never prefetched: the call stops when such a tenant is next.
-- Returns { next_due_ms, records... } where next_due_ms is the time until
-- the earliest delayed job is due (-1: none) and each record is either
--   "j", id, token, tenant_id, type, payload, priority, enqueued_at_ns,
--        attempt, max_attempts, trace_id, span_id, trace_flags   (13 items)
--   "d", id, tenant_id|"?", type|"?", attempt, reason         (6 items)
-- ("d": a malformed job document was moved to the dead-letter list).
-- The "j" records come in lease order: the first ARGV[6] are not prefetched.
local max, lease_ms, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local aging, defcost = tonumber(ARGV[4]), tonumber(ARGV[5])
local imm = tonumber(ARGV[6]) or max
local now = now_ms()
local out = { -1 }

-- Promote due delayed jobs (bounded per call; the rest next time).
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 256)
for _, id in ipairs(due) do
	redis.call('ZREM', P .. 'delayed', id)
	local f = redis.call('HMGET', jkey(id), 'tenant_id', 'priority', 'type', 'attempt')
	local p = PRIO[f[2] or '']
	if f[1] and p then
		redis.call('HINCRBY', tkey(f[1]), 'delayed', -1)
		redis.call('RPUSH', qkey(f[1], p), id)
		activate(f[1])
	else
		bury(id, 'malformed job document (tenant_id/priority)', now)
		for _, v in ipairs({ 'd', id, f[1] or '?', f[3] or '?', num(f[4], 0), 'malformed job document (tenant_id/priority)' }) do
			out[#out + 1] = v
		end
	end
end

-- Level of the head of tenant t's priority list p: p minus one per aging_ms
-- waited, so lower priorities are never starved forever.
local function level(t, p, id)
	if aging <= 0 or p == 0 then return p end
	local ens = tonumber(redis.call('HGET', jkey(id), 'enqueued_at_ns'))
	if ens == nil then return p end
	return p - math.floor((now - ens / 1e6) / aging)
end

-- Per-tenant state is read once per call and written back at the end
-- (scripts are atomic, so nobody else sees the intermediate values).
local defcap = num(redis.call('HGET', P .. 'cfg', 'default_cap'), 0)
local vtime0 = num(redis.call('GET', P .. 'vtime'), 0)
local vtime = vtime0
local tc, touched = {}, {}
local function tstate(t)
	local s = tc[t]
	if s then return s end
	local f = redis.call('HMGET', tkey(t), 'weight', 'cost', 'cap', 'inflight')
	s = { w = num(f[1], 1), cost = num(f[2], defcost), cap = num(f[3], 0), inflight = num(f[4], 0) }
	if s.w <= 0 then s.w = 1 end
	if s.cap <= 0 then s.cap = defcap end
	tc[t] = s
	touched[#touched + 1] = t
	return s
end

local leases = {}
local n, guard = 0, 0
while n < max and guard < max * 4 do
	guard = guard + 1
	-- The tenant with the smallest virtual start time, and the runner-up:
	-- t is served until its pass exceeds the runner-up's (one ZADD per run
	-- of jobs instead of one per job).
	local top = redis.call('ZRANGE', P .. 'ready', 0, 1, 'WITHSCORES')
	if #top == 0 then break end
	local t, S = top[1], tonumber(top[2])
	local S2 = top[4] and tonumber(top[4]) or math.huge
	local s = tstate(t)
	-- A capped tenant's jobs are leased only for free slots: it stays in
	-- ready, first in line for the next free slot.
	if n >= imm and s.cap > 0 then break end
	local eligible = false
	-- Heads of the three priority lists, read once per run: nothing is
	-- pushed while the script runs, so only the popped list changes.
	local heads = {}
	for p = 0, 2 do heads[p] = redis.call('LINDEX', qkey(t, p), 0) end
	repeat
		local pick, nonempty = nil, 0
		for p = 0, 2 do
			if heads[p] then
				nonempty = nonempty + 1
				if pick == nil then pick = p end
			end
		end
		-- Levels (aging) matter only when more than one list has work.
		if nonempty > 1 and aging > 0 then
			local best
			pick = nil
			for p = 0, 2 do
				if heads[p] then
					local l = level(t, p, heads[p])
					if pick == nil or l < best then pick, best = p, l end
				end
			end
		end
		if pick == nil then break end
		local id = redis.call('LPOP', qkey(t, pick))
		local jk = jkey(id)
		if S > vtime then vtime = S end
		S = S + s.cost / s.w
		s.pass = S
		local f = redis.call('HMGET', jk, 'tenant_id', 'type', 'payload', 'priority',
			'enqueued_at_ns', 'attempt', 'max_attempts', 'trace_id', 'span_id', 'trace_flags')
		local why
		if f[1] ~= t then why = 'malformed job document (tenant_id)'
		elseif not f[2] or #f[2] == 0 then why = 'malformed job document (type)'
		elseif not f[3] then why = 'malformed job document (payload)'
		elseif PRIO[f[4] or ''] == nil then why = 'malformed job document (priority)'
		elseif tonumber(f[5]) == nil then why = 'malformed job document (enqueued_at_ns)'
		elseif num(f[7], 0) < 1 then why = 'malformed job document (max_attempts)'
		elseif f[6] and tonumber(f[6]) == nil then why = 'malformed job document (attempt)'
		end
		if why then
			bury(id, why, now)
			for _, v in ipairs({ 'd', id, f[1] or '?', f[2] or '?', num(f[6], 0), why }) do
				out[#out + 1] = v
			end
		else
			s.inflight = s.inflight + 1
			s.dirty = true
			local attempt = num(f[6], 0) + 1
			local token = prefix .. ':' .. n
			if n < imm then
				redis.call('HSET', jk, 'attempt', attempt, 'lease', token, 'cost_est', s.cost)
			else
				redis.call('HSET', jk, 'attempt', attempt, 'lease', token, 'cost_est', s.cost, 'pf', 1)
			end
			leases[#leases + 1] = now + lease_ms
			leases[#leases + 1] = id
			for _, v in ipairs({ 'j', id, token, t, f[2], f[3], f[4], f[5], attempt, f[7],
				f[8] or '', f[9] or '', f[10] or '00' }) do
				out[#out + 1] = v
			end
			n = n + 1
		end
		heads[pick] = redis.call('LINDEX', qkey(t, pick), 0)
		local more = heads[0] or heads[1] or heads[2]
		eligible = more and (s.cap <= 0 or s.inflight < s.cap)
	until not eligible or n >= max or S > S2 or (n >= imm and s.cap > 0)
	if eligible then
		redis.call('ZADD', P .. 'ready', S, t)
	else
		redis.call('ZREM', P .. 'ready', t)
	end
end
if #leases > 0 then redis.call('ZADD', P .. 'leases', unpack(leases)) end
for _, t in ipairs(touched) do
	local s = tc[t]
	if s.dirty then
		redis.call('HSET', tkey(t), 'pass', s.pass, 'inflight', s.inflight)
	else
		redis.call('HSET', tkey(t), 'pass', s.pass)
	end
end
if vtime > vtime0 then redis.call('SET', P .. 'vtime', vtime) end

local nd = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
if #nd > 0 then
	local d = tonumber(nd[2]) - now
	if d < 0 then d = 0 end
	out[1] = d
end
return out
