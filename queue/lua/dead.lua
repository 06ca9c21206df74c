-- dead.lua - inspect and retry dead-lettered jobs.
-- KEYS[1]  queue prefix
-- ARGV[1]  "list" | "retry"
-- list:  ARGV[2] max entries. Returns records of 6 items, newest first:
--        id, tenant_id|"?", type|"?", attempt, failed_at_ns, reason.
-- retry: ARGV[2] job id, or "all" (at most ARGV[3] jobs per call). Moves the
--        jobs back to the tail of their ready queue with attempt (and
--        stalls) reset.
--        Returns the number moved; documents too broken to requeue stay.
local op = ARGV[1]
if op == 'list' then
	local out = {}
	for _, id in ipairs(redis.call('LRANGE', P .. 'dead', 0, tonumber(ARGV[2]) - 1)) do
		local f = redis.pcall('HMGET', jkey(id), 'tenant_id', 'type', 'attempt', 'failed_at_ns', 'dead_reason')
		if f.err then f = { false, false, false, false, 'not a job document (key of another type)' } end
		for _, v in ipairs({ id, f[1] or '?', f[2] or '?', num(f[3], 0), f[4] or '0', f[5] or '' }) do
			out[#out + 1] = v
		end
	end
	return out
end
if op ~= 'retry' then return redis.error_reply('ERR jobq: unknown dead op') end
local ids
if ARGV[2] == 'all' then
	ids = redis.call('LRANGE', P .. 'dead', -tonumber(ARGV[3]), -1)
else
	ids = { ARGV[2] }
end
local moved = 0
for _, id in ipairs(ids) do
	local jk = jkey(id)
	local f = redis.pcall('HMGET', jk, 'tenant_id', 'priority', 'type')
	if f.err then f = {} end
	local p = PRIO[f[2] or '']
	if f[1] and p and f[3] and redis.call('LREM', P .. 'dead', 1, id) > 0 then
		redis.call('HSET', jk, 'attempt', 0)
		redis.call('HDEL', jk, 'dead_reason', 'failed_at_ns', 'last_error', 'stalls', 'pf')
		redis.call('RPUSH', qkey(f[1], p), id)
		activate(f[1])
		moved = moved + 1
	end
end
return moved
