-- dequeue.lua - lease up to N jobs, chosen by weighted start-time fair
-- queuing across tenants and by priority (with aging) within a tenant.
-- Also promotes due delayed jobs first.
-- KEYS[1]  queue prefix
-- ARGV[1]  max jobs to lease (>= 1)
-- ARGV[2]  lease length in ms
-- ARGV[3]  lease token (random per call; a lease is the pair (id, token))
-- ARGV[4]  aging_ms (0 = strict priority)
-- ARGV[5]  default cost in ms for a tenant without a duration estimate
-- ARGV[6]  jobs leased for free handler slots (0..ARGV[1]; absent: all). The
--          jobs after them are leased ahead of a free slot (prefetch): they
--          are in the `pf` set until the worker reports them started
--          (start.lua), so a lease that expires before they started gives
--          their attempt back (reap.lua). A tenant with a concurrency cap is
--          never prefetched: the call stops when such a tenant is next.
-- Returns { next_due_ms, records... } where next_due_ms is the time until
-- the earliest delayed job is due (-1: none) and each record is either
--   "j", id, token, tenant_id, type, payload, priority, enqueued_at_ns,
--        attempt, max_attempts, trace_id, span_id, trace_flags,
--        cost_est                                                 (14 items)
-- (attempt: this lease's attempt, the document's count + 1; the document
-- is not written here, see ack.lua and reap.lua. cost_est: the cost in ms
-- charged to the tenant for the job, which the ack corrects.)
--   "d", id, tenant_id|"?", type|"?", attempt, reason         (6 items)
-- ("d": a malformed job document was moved to the dead-letter list).
-- The "j" records come in lease order: the first ARGV[6] are not prefetched.
--
-- Redis does not roll back a script that fails halfway, so nothing here may
-- fail after the first write: every key is read (its type checked) before
-- it is written, stored numbers are used only when finite (num), a tenant
-- in `ready` without state or work (a "ghost") is dropped from it, as is a
-- tenant found at its cap (checked before popping), and a job document is
-- validated before its id is popped. At most MALFORMED_MAX
-- malformed documents are dead-lettered per call (the rest next call).
local max, lease_ms, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local aging, defcost = tonumber(ARGV[4]), tonumber(ARGV[5])
local imm = tonumber(ARGV[6]) or max
if not max or max < 1 or not lease_ms or not aging or not defcost or defcost <= 0 or not imm then
	return redis.error_reply('ERR jobq: dequeue: bad arguments')
end
local MALFORMED_MAX = 100
local now = now_ms()
local out = { -1 }
local nbad = 0

-- Read every queue-wide key written below first: a key of the wrong type
-- fails the call here, before anything changed.
local defcap = num(redis.call('HGET', P .. 'cfg', 'default_cap'), 0)
local vtime0 = num(redis.call('GET', P .. 'vtime'), 0)
redis.call('ZCARD', P .. 'ready')
redis.call('ZCARD', P .. 'leases')
redis.call('HLEN', P .. 'lease')
redis.call('SCARD', P .. 'pf')
redis.call('LLEN', P .. 'dead')
redis.call('LLEN', P .. 'wake')

local function perr(r) return type(r) == 'table' and r.err ~= nil end

-- 1 if tenant t's state hash and lists can be read (and so written).
local function tenant_usable(t)
	if perr(redis.pcall('HGET', tkey(t), 'inflight')) then return false end
	for p = 0, 2 do
		if perr(redis.pcall('LLEN', qkey(t, p))) then return false end
	end
	return true
end

local function add_dead(id, t, ty, attempt, why)
	for _, v in ipairs({ 'd', id, t or '?', ty or '?', attempt, why }) do
		out[#out + 1] = v
	end
end

-- Promote due delayed jobs (bounded per call; the rest next time).
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 256)
for _, id in ipairs(due) do
	local f = redis.pcall('HMGET', jkey(id), 'tenant_id', 'priority', 'type', 'attempt')
	if perr(f) then f = {} end
	local t, p = f[1], PRIO[f[2] or '']
	redis.call('ZREM', P .. 'delayed', id)
	if t and p and tenant_usable(t) then
		redis.call('HINCRBY', tkey(t), 'delayed', -1)
		redis.call('RPUSH', qkey(t, p), id)
		activate(t)
	else
		local why = t and p and 'unusable tenant state (wrong key type)'
			or 'malformed job document (tenant_id/priority)'
		bury(id, why, now)
		add_dead(id, f[1], f[3], num(f[4], 0), why)
	end
end

-- Level of the head of tenant t's priority list p: p minus one per aging_ms
-- waited. A lower list whose level reaches the top list's shares the
-- tenant's dispatches with it, one job each (the pick below), so it is never
-- starved forever and never holds the top list back by more than a job.
local function level(t, p, id)
	if aging <= 0 or p == 0 then return p end
	local ens = redis.pcall('HGET', jkey(id), 'enqueued_at_ns')
	ens = not perr(ens) and num(ens, nil)
	if not ens then return p end
	return p - math.floor((now - ens / 1e6) / aging)
end

-- Per-tenant state is read once per call and written back at the end
-- (scripts are atomic, so nobody else sees the intermediate values).
-- false: the tenant's keys cannot be used (wrong type).
local vtime = vtime0
local tc, touched = {}, {}
local function tstate(t)
	local s = tc[t]
	if s ~= nil then return s end
	local f = redis.pcall('HMGET', tkey(t), 'weight', 'cost', 'cap', 'inflight', 'alt')
	if perr(f) then
		tc[t] = false
		return false
	end
	s = { w = num(f[1], 1), cost = num(f[2], defcost), cap = num(f[3], 0), inflight = num(f[4], 0),
		alt = num(f[5], 0) }
	if s.w <= 0 then s.w = 1 end
	if s.cost < 0 then s.cost = defcost end
	if s.cap <= 0 then s.cap = defcap end
	if s.inflight < 0 then s.inflight = 0 end
	tc[t] = s
	touched[#touched + 1] = t
	return s
end

local JOB_FIELDS = { 'tenant_id', 'type', 'payload', 'priority', 'enqueued_at_ns', 'attempt',
	'max_attempts', 'trace_id', 'span_id', 'trace_flags' }

-- Why the document of id (HMGET reply f) cannot be leased for tenant t, or nil.
local function invalid(f, t)
	if perr(f) then return 'malformed job document (not a hash)' end
	if f[1] ~= t then return 'malformed job document (tenant_id)' end
	if not f[2] or #f[2] == 0 then return 'malformed job document (type)' end
	if not f[3] then return 'malformed job document (payload)' end
	if PRIO[f[4] or ''] == nil then return 'malformed job document (priority)' end
	if num(f[5], nil) == nil then return 'malformed job document (enqueued_at_ns)' end
	if num(f[7], 0) < 1 then return 'malformed job document (max_attempts)' end
	if f[6] and num(f[6], nil) == nil then return 'malformed job document (attempt)' end
	return nil
end

-- Batched writes, one call each at the end: lease deadlines, tokens,
-- prefetch marks.
local leases, nl, tokens, pfs = {}, 0, {}, {}
local n, guard = 0, 0
while n < max and guard < max * 4 and nbad < MALFORMED_MAX do
	guard = guard + 1
	-- The tenant with the smallest virtual start time, and the runner-up:
	-- t is served until its pass exceeds the runner-up's (one ZADD per run
	-- of jobs instead of one per job).
	local top = redis.call('ZRANGE', P .. 'ready', 0, 1, 'WITHSCORES')
	if #top == 0 then break end
	local t, S = top[1], num(top[2], vtime)
	local S2 = top[4] and num(top[4], vtime) or math.huge
	local s = tstate(t)
	-- Heads of the three priority lists, read once per run: nothing is
	-- pushed while the script runs, so only the popped list changes.
	local heads = {}
	for p = 0, 2 do
		if s then
			heads[p] = redis.pcall('LINDEX', qkey(t, p), 0)
			if perr(heads[p]) then s, tc[t] = false, false end
		end
	end
	if not s then heads = {} end
	if not (s and (heads[0] or heads[1] or heads[2])) then
		-- A ghost: in ready without usable state or without work.
		redis.call('ZREM', P .. 'ready', t)
	elseif s.cap > 0 and s.inflight >= s.cap then
		-- At its cap already (e.g. the cap was lowered while it was in
		-- ready): checked before popping, so no extra lease. An ack
		-- below the cap puts it back (activate).
		redis.call('ZREM', P .. 'ready', t)
	-- A capped tenant's jobs are leased only for free slots: it stays in
	-- ready, first in line for the next free slot.
	elseif n >= imm and s.cap > 0 then
		break
	else
		local eligible = false
		repeat
			local pick, nonempty = nil, 0
			for p = 0, 2 do
				if heads[p] then
					nonempty = nonempty + 1
					if pick == nil then pick = p end
				end
			end
			-- Levels (aging) matter only when more than one list has work:
			-- the lower list that aged furthest, once at the level of the
			-- top one (the highest priority with work), alternates with
			-- it (s.alt: the last such pick went to the lower list).
			-- Without the alternation an old low backlog outranked fresh
			-- high jobs until all of it drained.
			if nonempty > 1 and aging > 0 then
				local low, lowl
				for p = pick + 1, 2 do
					if heads[p] then
						local l = level(t, p, heads[p])
						if low == nil or l < lowl then low, lowl = p, l end
					end
				end
				if lowl <= level(t, pick, heads[pick]) then
					if s.alt == 1 then
						s.alt = 0
					else
						pick, s.alt = low, 1
					end
				end
			end
			-- A run: up to k jobs from list pick in one LRANGE/LTRIM instead
			-- of a pop per job (each redis.call costs several us of Lua
			-- overhead here). The pick cannot change during the run unless
			-- another list competes by age, so k > 1 only without aging or
			-- with one list holding work; k stops where the job-at-a-time
			-- loop would stop: max, the cap, the free slots of a capped
			-- tenant, the runner-up's pass, the malformed-document bound.
			local k = 1
			if nonempty == 1 or aging <= 0 then
				k = max - n
				if s.cap > 0 then
					k = math.min(k, s.cap - s.inflight, imm - n)
				end
				local inc = s.cost / s.w
				if S2 < math.huge and inc > 0 then
					k = math.min(k, math.floor((S2 - S) / inc) + 1)
				end
				k = math.min(k, MALFORMED_MAX - nbad)
				if k < 1 then k = 1 end
			end
			local q = qkey(t, pick)
			-- One id more than the run: the list's next head, if any.
			local ids = redis.call('LRANGE', q, 0, k)
			local take = math.min(#ids, k)
			-- A reply number would be cut to an integer: the text.
			local cost = tostring(s.cost)
			for i = 1, take do
				local id = ids[i]
				local jk = jkey(id)
				-- Validated before the first write for this job; the ids are
				-- trimmed from the list after the run (LTRIM cannot fail).
				local f = redis.pcall('HMGET', jk, unpack(JOB_FIELDS))
				local why = invalid(f, t)
				if why then
					if perr(f) then f = {} end
					bury(id, why, now)
					add_dead(id, f[1], f[2], num(f[6], 0), why)
					nbad = nbad + 1
				else
					if S > vtime then vtime = S end
					S = S + s.cost / s.w
					s.pass = S
					s.inflight = s.inflight + 1
					s.dirty = true
					local attempt = num(f[6], 0) + 1
					if n >= imm then pfs[#pfs + 1] = id end
					nl = nl + 2
					leases[nl - 1], leases[nl] = now + lease_ms, id
					tokens[nl - 1], tokens[nl] = id, prefix
					local o = #out
					out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6], out[o + 7] =
						'j', id, prefix, t, f[2], f[3], f[4]
					out[o + 8], out[o + 9], out[o + 10], out[o + 11], out[o + 12], out[o + 13], out[o + 14] =
						f[5], attempt, f[7], f[8] or '', f[9] or '', f[10] or '00', cost
					n = n + 1
				end
			end
			redis.call('LTRIM', q, take, -1)
			heads[pick] = ids[take + 1]
			local more = heads[0] or heads[1] or heads[2]
			eligible = more and (s.cap <= 0 or s.inflight < s.cap)
		until not eligible or n >= max or S > S2 or nbad >= MALFORMED_MAX or (n >= imm and s.cap > 0)
		if eligible then
			redis.call('ZADD', P .. 'ready', S, t)
		else
			redis.call('ZREM', P .. 'ready', t)
		end
	end
end
if nl > 0 then
	redis.call('ZADD', P .. 'leases', unpack(leases))
	redis.call('HSET', P .. 'lease', unpack(tokens))
end
if #pfs > 0 then redis.call('SADD', P .. 'pf', unpack(pfs)) end
for _, t in ipairs(touched) do
	local s = tc[t]
	if s and s.dirty then
		redis.call('HSET', tkey(t), 'pass', s.pass, 'inflight', s.inflight, 'alt', s.alt)
	end
end
if vtime > vtime0 then redis.call('SET', P .. 'vtime', vtime) end

local nd = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
if #nd > 0 then
	local d = num(nd[2], now) - now
	if d < 0 then d = 0 end
	out[1] = d
end
return out
