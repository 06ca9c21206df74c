/* scripts.h - the embedded Lua scripts (queue/lua/NAME.lua, generated into
 * $(BUILD)/queue/lua_scripts.c by queue/lua/embed.sh in this order). */
#ifndef JOBQ_SCRIPTS_H
#define JOBQ_SCRIPTS_H

enum jobq_script_id {
	JOBQ_S_ENQUEUE,
	JOBQ_S_DEQUEUE,
	JOBQ_S_ACK,
	JOBQ_S_RENEW,
	JOBQ_S_REAP,
	JOBQ_S_STATS,
	JOBQ_S_POLICY,
	JOBQ_S_DEAD,
	JOBQ_S_START,
	JOBQ_S_COUNT
};

struct jobq_lua_script {
	const char *name;
	const char *src; /* common.lua followed by <name>.lua */
};

extern const struct jobq_lua_script jobq_lua_scripts[JOBQ_S_COUNT];

#endif
