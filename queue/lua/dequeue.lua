-- dequeue.lua - lease up to N jobs, chosen by weighted start-time fair
-- queuing across tenants and by priority (with aging) within a tenant.
-- Also promotes due delayed jobs first.
-- KEYS[1]  queue prefix
-- ARGV[1]  max jobs to lease (>= 1)
-- ARGV[2]  lease length in ms
-- ARGV[3]  lease token prefix (random per call; token = prefix .. ":" .. i)
-- ARGV[4]  aging_ms (0 = strict priority)
-- ARGV[5]  default cost in ms for a tenant without a duration estimate
-- Returns { next_due_ms, records... } where next_due_ms is the time until
-- the earliest delayed job is due (-1: none) and each record is either
--   "j", id, token, tenant_id, type, payload, priority, enqueued_at_ns,
--        attempt, max_attempts, trace_id, span_id, trace_flags   (13 items)
--   "d", id, tenant_id|"?", type|"?", attempt, reason         (6 items)
-- ("d": a malformed job document was moved to the dead-letter list).
local max, lease_ms, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local aging, defcost = tonumber(ARGV[4]), tonumber(ARGV[5])
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

local n, guard = 0, 0
while n < max and guard < max * 4 do
	guard = guard + 1
	local top = redis.call('ZRANGE', P .. 'ready', 0, 0, 'WITHSCORES')
	if #top == 0 then break end
	local t, S = top[1], tonumber(top[2])
	local pick, best
	for p = 0, 2 do
		local id = redis.call('LINDEX', qkey(t, p), 0)
		if id then
			local l = level(t, p, id)
			if pick == nil or l < best then pick, best = p, l end
			-- Without aging nothing below a non-empty high list can win.
			if p == 0 and aging <= 0 then break end
		end
	end
	local tk = tkey(t)
	if pick == nil then
		redis.call('ZREM', P .. 'ready', t)
	else
		local id = redis.call('LPOP', qkey(t, pick))
		local jk = jkey(id)
		if S > num(redis.call('GET', P .. 'vtime'), 0) then redis.call('SET', P .. 'vtime', S) end
		local w = num(redis.call('HGET', tk, 'weight'), 1)
		if w <= 0 then w = 1 end
		local cost = num(redis.call('HGET', tk, 'cost'), defcost)
		local pass = S + cost / w
		redis.call('HSET', tk, 'pass', pass)
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
		local inflight = num(redis.call('HGET', tk, 'inflight'), 0)
		if why then
			bury(id, why, now)
			for _, v in ipairs({ 'd', id, f[1] or '?', f[2] or '?', num(f[6], 0), why }) do
				out[#out + 1] = v
			end
		else
			inflight = redis.call('HINCRBY', tk, 'inflight', 1)
			local attempt = num(f[6], 0) + 1
			local token = prefix .. ':' .. n
			redis.call('HSET', jk, 'attempt', attempt, 'lease', token, 'cost_est', cost)
			redis.call('ZADD', P .. 'leases', now + lease_ms, id)
			for _, v in ipairs({ 'j', id, token, t, f[2], f[3], f[4], f[5], attempt, f[7],
				f[8] or '', f[9] or '', f[10] or '00' }) do
				out[#out + 1] = v
			end
			n = n + 1
		end
		local cap = cap_of(t)
		if depth(t) > 0 and (cap <= 0 or inflight < cap) then
			redis.call('ZADD', P .. 'ready', pass, t)
		else
			redis.call('ZREM', P .. 'ready', t)
		end
	end
end

local nd = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
if #nd > 0 then
	local d = tonumber(nd[2]) - now
	if d < 0 then d = 0 end
	out[1] = d
end
return out
