-- dead.lua - inspect and retry dead-lettered jobs.
-- KEYS[1]  queue prefix
-- ARGV[1]  "list" | "retry"
-- list:  ARGV[2] max entries. Returns records of 6 items, newest first:
--        id, tenant_id|"?", type|"?", attempt (as stored, "0" if absent),
--        failed_at_ns, reason.
-- retry: ARGV[2] job id, or "all": ARGV[3] entries per call, ARGV[4] entries
--        at the tail to leave out (the ones earlier calls skipped). Moves
--        the jobs back to the tail of their ready queue with attempt (and
--        stalls) reset; documents too broken to requeue stay in the list.
--        Returns { moved, skipped } for an id (skipped 1: in the list but
--        not requeueable), { moved, skipped, entries looked at } for "all".
local op = ARGV[1]
if op == 'list' then
	local out = {}
	for _, id in ipairs(redis.call('LRANGE', P .. 'dead', 0, tonumber(ARGV[2]) - 1)) do
		local f = redis.pcall('HMGET', jkey(id), 'tenant_id', 'type', 'attempt', 'failed_at_ns', 'dead_reason')
		if f.err then f = { false, false, false, false, 'not a job document (key of another type)' } end
		-- attempt as stored (the client checks its range; a Lua number
		-- out of the integer range would be mangled on the way).
		for _, v in ipairs({ id, f[1] or '?', f[2] or '?', f[3] or '0', f[4] or '0', f[5] or '' }) do
			out[#out + 1] = v
		end
	end
	return out
end
if op ~= 'retry' then return redis.error_reply('ERR jobq: unknown dead op') end

-- Requeues dead job id if its document allows; true if it did.
local function requeue(id, from_tail)
	local jk = jkey(id)
	local f = redis.pcall('HMGET', jk, 'tenant_id', 'priority', 'type')
	if f.err then return false end
	local p = PRIO[f[2] or '']
	if not (f[1] and p and f[3]) then return false end
	-- Keys it will write must be of the right type (no error after LREM).
	for _, r in ipairs({ redis.pcall('LLEN', qkey(f[1], p)), redis.pcall('HGET', tkey(f[1]), 'inflight') }) do
		if type(r) == 'table' and r.err then return false end
	end
	if redis.call('LREM', P .. 'dead', from_tail and -1 or 1, id) == 0 then return false end
	redis.call('HSET', jk, 'attempt', 0)
	redis.call('HDEL', jk, 'dead_reason', 'failed_at_ns', 'last_error', 'stalls')
	redis.call('RPUSH', qkey(f[1], p), id)
	activate(f[1])
	return true
end

if ARGV[2] ~= 'all' then
	local id = ARGV[2]
	if requeue(id, false) then return { 1, 0 } end
	return { 0, redis.call('LPOS', P .. 'dead', id) and 1 or 0 }
end
-- The tail window: the oldest ARGV[3] entries before the ARGV[4] at the very
-- tail that earlier calls could not requeue (they stay where they are, so
-- the entries skipped so far always form the tail).
local chunk, skip = tonumber(ARGV[3]), tonumber(ARGV[4]) or 0
local ids = redis.call('LRANGE', P .. 'dead', -(skip + chunk), -(skip + 1))
local moved, skipped = 0, 0
for i = #ids, 1, -1 do
	if requeue(ids[i], true) then moved = moved + 1 else skipped = skipped + 1 end
end
return { moved, skipped, #ids }
