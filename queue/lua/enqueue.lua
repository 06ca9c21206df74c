-- enqueue.lua - add one job.
-- KEYS[1]  queue prefix "jobq:{<queue>}:"
-- ARGV[1]  tenant_id      1..64 bytes
-- ARGV[2]  type           1..64 bytes
-- ARGV[3]  payload        opaque bytes
-- ARGV[4]  priority       "high" | "normal" | "low"
-- ARGV[5]  enqueued_at    unix seconds, decimal ("1733250000.123456")
-- ARGV[6]  enqueued_at_ns unix nanoseconds, integer string
-- ARGV[7]  trace_id       32 lowercase hex ("" = none)
-- ARGV[8]  span_id        16 lowercase hex ("" = none)
-- ARGV[9]  trace_flags    2 lowercase hex ("00" | "01")
-- ARGV[10] max_attempts   integer >= 1
-- ARGV[11] delay_ms       integer >= 0
-- Returns the new job id (integer). Errors name the offending field.
local t, ty = ARGV[1], ARGV[2]
if #t == 0 or #t > 64 then return redis.error_reply('ERR jobq: tenant_id must be 1..64 bytes') end
if #ty == 0 or #ty > 64 then return redis.error_reply('ERR jobq: type must be 1..64 bytes') end
local p = PRIO[ARGV[4]]
if p == nil then return redis.error_reply('ERR jobq: unknown priority "' .. ARGV[4] .. '"') end
local maxa = tonumber(ARGV[10])
if maxa == nil or maxa < 1 or maxa ~= math.floor(maxa) then
	return redis.error_reply('ERR jobq: max_attempts must be an integer >= 1')
end
local delay = tonumber(ARGV[11])
if delay == nil or delay < 0 then return redis.error_reply('ERR jobq: delay_ms must be >= 0') end
if tonumber(ARGV[6]) == nil then return redis.error_reply('ERR jobq: enqueued_at_ns must be an integer') end

-- Redis does not undo a script's writes when a later command fails, so a
-- tenant key of the wrong type (another program's key under our prefix)
-- must fail the script before anything is written: the tenant hash is
-- checked here (HLEN errors on a non-hash) and the tenant's list or the
-- delayed set is written before the job hash, so the error leaves no job
-- hash without a queue entry (only an unused id).
redis.call('HLEN', tkey(t))
local id = redis.call('INCR', P .. 'seq')
if delay > 0 then
	redis.call('ZADD', P .. 'delayed', now_ms() + delay, id)
else
	redis.call('RPUSH', qkey(t, p), id)
end
redis.call('HSET', jkey(id), 'id', id, 'tenant_id', t, 'type', ty, 'payload', ARGV[3],
	'priority', ARGV[4], 'enqueued_at', ARGV[5], 'enqueued_at_ns', ARGV[6],
	'trace_id', ARGV[7], 'span_id', ARGV[8], 'trace_flags', ARGV[9],
	'attempt', 0, 'max_attempts', maxa)
redis.call('SADD', P .. 'tenants', t)
if delay > 0 then
	redis.call('HINCRBY', tkey(t), 'delayed', 1)
else
	activate(t)
end
-- Idle workers block on the wake list; a delayed job also wakes them so
-- they recompute how long to block.
wake()
return id
