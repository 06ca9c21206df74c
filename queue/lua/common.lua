-- common.lua - helpers prepended to every jobq script at build time (a
-- script's source is common.lua followed by <name>.lua; other-language
-- clients must concatenate the same way, see docs/redis-layout.md).
--
-- KEYS[1] is the queue prefix "jobq:{<queue>}:". Every key a script touches
-- is KEYS[1] .. suffix, so all of them share the hash tag {<queue>} and live
-- in one Redis Cluster slot.
local P = KEYS[1]
local PRIO = { high = 0, normal = 1, low = 2 }
local PRIO_NAME = { [0] = 'high', [1] = 'normal', [2] = 'low' }
local WAKE_MAX = 64 -- wake tokens kept for blocked workers (bounded)

local function now_ms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function tkey(t) return P .. 't:' .. t end
local function qkey(t, p) return P .. 'q:' .. t .. ':' .. p end
local function jkey(id) return P .. 'job:' .. id end
-- A finite number from a stored value, else d: "nan"/"inf" would make
-- ZADD/ZINCRBY fail halfway through a script (Redis does not roll back).
local function num(v, d)
	local n = tonumber(v)
	if n == nil or n ~= n or n == math.huge or n == -math.huge then return d end
	return n
end

local function wake()
	redis.call('LPUSH', P .. 'wake', '1')
	redis.call('LTRIM', P .. 'wake', 0, WAKE_MAX - 1)
end

-- Effective concurrency cap of a tenant: its own, else the queue default;
-- 0 means unlimited.
local function cap_of(t)
	local c = num(redis.call('HGET', tkey(t), 'cap'), 0)
	if c <= 0 then c = num(redis.call('HGET', P .. 'cfg', 'default_cap'), 0) end
	return c
end

local function depth(t)
	return redis.call('LLEN', qkey(t, 0)) + redis.call('LLEN', qkey(t, 1)) +
		redis.call('LLEN', qkey(t, 2))
end

-- Puts tenant t in the ready set if it has ready work, is under its cap and
-- is not there yet. Start-time fair queuing: it starts at max(its own
-- finish tag, the queue's virtual time), so an idle period neither banks
-- credit nor costs a penalty.
local function activate(t)
	if redis.call('ZSCORE', P .. 'ready', t) then return end
	if depth(t) == 0 then return end
	local cap = cap_of(t)
	if cap > 0 and num(redis.call('HGET', tkey(t), 'inflight'), 0) >= cap then return end
	local v = num(redis.call('GET', P .. 'vtime'), 0)
	local pass = num(redis.call('HGET', tkey(t), 'pass'), 0)
	if pass < v then pass = v end
	redis.call('ZADD', P .. 'ready', pass, t)
	wake()
end

-- The first n bytes of s at most, cut on a UTF-8 character boundary (a cut
-- never leaves a character's lead byte without its continuation bytes).
local function utf8_head(s, n)
	if #s <= n then return s end
	local k = n
	while k > n - 3 and k > 0 do
		local b = string.byte(s, k + 1)
		if b < 0x80 or b >= 0xC0 then break end
		k = k - 1
	end
	return string.sub(s, 1, k)
end

-- Moves job id to the dead-letter list with a reason (the job hash stays,
-- so `jobq dead retry` can bring it back). A key of another type under the
-- id's name (not a job document) does not stop the burial: pcall. Its
-- lease (token and prefetch mark) goes; the caller removes the `leases`
-- entry.
local function bury(id, reason, now)
	redis.pcall('HSET', jkey(id), 'id', id, 'dead_reason', utf8_head(reason, 128),
		-- now is whole ms (exact in a double); now * 1e6 (~1.8e18) is past
		-- 2^53, where a double rounds (...924999936): append the zeros as text.
		'failed_at_ns', string.format('%.0f', now) .. '000000')
	redis.call('HDEL', P .. 'lease', id)
	redis.call('SREM', P .. 'pf', id)
	redis.call('LPUSH', P .. 'dead', id)
end
