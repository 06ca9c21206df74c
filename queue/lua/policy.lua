-- policy.lua - set tenant weight / cap or the queue's default cap.
-- KEYS[1]  queue prefix
-- ARGV[1]  "weight" | "cap" | "default_cap"
-- ARGV[2]  tenant_id ("" for default_cap)
-- ARGV[3]  value (weight > 0; cap integer >= 0)
-- Returns "OK". A raised cap re-admits a capped tenant to the ready set.
local what, t, v = ARGV[1], ARGV[2], tonumber(ARGV[3])
if v == nil or v < 0 or (what == 'weight' and v <= 0) then
	return redis.error_reply('ERR jobq: invalid ' .. what .. ' value')
end
if what == 'default_cap' then
	redis.call('HSET', P .. 'cfg', 'default_cap', math.floor(v))
	for _, x in ipairs(redis.call('SMEMBERS', P .. 'tenants')) do activate(x) end
	return 'OK'
end
if #t == 0 or #t > 64 then return redis.error_reply('ERR jobq: tenant_id must be 1..64 bytes') end
redis.call('SADD', P .. 'tenants', t)
if what == 'weight' then
	redis.call('HSET', tkey(t), 'weight', v)
elseif what == 'cap' then
	redis.call('HSET', tkey(t), 'cap', math.floor(v))
else
	return redis.error_reply('ERR jobq: unknown policy "' .. what .. '"')
end
activate(t)
return 'OK'
