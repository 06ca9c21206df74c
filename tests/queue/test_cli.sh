#!/usr/bin/env bash
# The jobq CLI end to end against a private redis-server: enqueue from flags
# and JSON lines, clear errors with exit 2 (usage) / 1 (runtime, naming the
# field), stats table and --json, tenant set, dead list / retry.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
exec "$BUILD/tests/with-redis" bash -c '
set -u
J="$BUILD/jobq --queue cli"
fail() { echo "FAIL: $*"; exit 1; }
expect() { # expect RC PATTERN CMD...: exit status and a stderr/stdout pattern
	want=$1 pat=$2; shift 2
	out=$("$@" 2>&1); rc=$?
	[ $rc -eq $want ] || fail "$* exited $rc, want $want: $out"
	echo "$out" | grep -q -- "$pat" || fail "$* said \"$out\", want /$pat/"
}
expect 0 "^1$" $J enqueue --tenant acme --type report --payload "{}" --priority high
expect 0 "enqueued 5 jobs" $J enqueue --tenant acme --type report --count 5
expect 2 "priority must be high, normal or low" $J enqueue --tenant a --type x --priority urgent
expect 2 "tenant and --type are required" $J enqueue --type x
expect 2 "unknown command" $J frobnicate
# getopt does not print its own messages: every error line starts "jobq:".
expect 2 "^jobq: enqueue: unknown option \"--bogus\"" $J enqueue --bogus
expect 2 "^jobq: enqueue: option \"--stdin\" takes no value" $J enqueue --stdin=yes
expect 2 "^jobq: worker: option \"--handler\" needs a value" $J worker --handler
expect 2 "^jobq: worker: unknown option \"-z\"" $J worker -z
expect 2 "^jobq: --handler x given twice (\"x=builtin:noop\" and \"x=builtin:fail:1\"): one handler per type" \
	timeout 10 $J worker --handler x=builtin:noop --handler x=builtin:fail:1
expect 2 "^jobq: --handler \* given twice" timeout 10 $J worker --handler "*=builtin:noop" --handler "*=builtin:noop"
for args in "enqueue --bogus" "enqueue --stdin=yes" "worker --handler" "worker -z"; do
	$J $args 2>&1 | grep -v "^jobq: " | grep -q "^\(enqueue\|worker\|[^ ]*jobq\):" && fail "$args: a getopt message without the jobq: prefix"
done
expect 1 "tenant_id must not be empty" $J enqueue --tenant "" --type x
expect 1 "tenant_id must be valid UTF-8" $J enqueue --tenant "$(printf "a\xff")" --type x
expect 1 "traceparent must be" $J enqueue --tenant a --type x --traceparent 00-bad
# A bad --queue or --redis is a usage error (2), for every command.
expect 2 "invalid redis URL" $BUILD/jobq --redis http://x stats
expect 2 "dead list: --max needs a count, an integer from 0 to 4294967295 (got \"-1\")" $J dead list --max -1
expect 2 "dead list: unknown argument \"--frob\" (usage: jobq dead list" $J dead list --frob
expect 1 "weights /nonexistent: cannot open: No such file or directory" timeout 10 $J worker --weights /nonexistent --handler x=builtin:noop
expect 2 "invalid redis URL \"garbage\": .*(from \$JOBQ_REDIS_URL)" env JOBQ_REDIS_URL=garbage $BUILD/jobq stats
expect 2 "invalid redis URL" $BUILD/jobq --redis http://x worker --handler x=builtin:noop
expect 2 "queue must not be empty" $BUILD/jobq --queue "" enqueue --tenant a --type x
expect 2 "queue must not be empty" $BUILD/jobq --queue= stats
expect 2 "queue must not contain" $BUILD/jobq --queue "a{b}" worker --handler x=builtin:noop
expect 1 "connect 127.0.0.1:1" $BUILD/jobq --redis redis://127.0.0.1:1 stats
# Out of range is said as such (it was "must be a non-negative integer").
expect 2 "delay-ms must be an integer from 0 to 4294967295" $J enqueue --tenant a --type x --delay-ms 99999999999999999999
# A known builtin with a bad argument is not "unknown".
expect 2 "handler x: bad arguments in \"builtin:fail:2\"" timeout 10 $J worker --handler x=builtin:fail:2
expect 2 "handler x: bad arguments in \"builtin:sleep:-1\"" timeout 10 $J worker --handler x=builtin:sleep:-1
expect 2 "handler x: unknown builtin \"builtin:nap:1\"" timeout 10 $J worker --handler x=builtin:nap:1
# A server that accepts and never answers, and one that is not redis: the
# error says so (not hiredis'"'"'s "Resource temporarily unavailable").
fake=$(mktemp -d)
python3 -c "
import socket, sys, time
for reply in (b\"\", b\"HTTP/1.1 400 Bad Request\r\n\r\n\"):
    s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(8)
    open(sys.argv[1] + (\"/silent\" if not reply else \"/http\"), \"w\").write(str(s.getsockname()[1]))
    if reply:
        http = s
    else:
        silent = s
conns = []
end = time.time() + 60
while time.time() < end and not __import__(\"os\").path.exists(sys.argv[1] + \"/done\"):
    import select
    r, _, _ = select.select([silent, http], [], [], 0.1)
    for l in r:
        c, _ = l.accept(); conns.append(c)
        if l is http:
            c.recv(65536); c.sendall(b\"HTTP/1.1 400 Bad Request\r\n\r\n\")
" "$fake" &
for i in $(seq 100); do [ -s "$fake/http" ] && break; sleep 0.05; done
expect 1 "connect 127.0.0.1:$(cat $fake/silent): SCRIPT LOAD: no reply from redis within 5000 ms" \
	$BUILD/jobq --redis redis://127.0.0.1:$(cat $fake/silent) stats
expect 1 "is it a redis server?" $BUILD/jobq --redis redis://127.0.0.1:$(cat $fake/http) stats
# jobq worker waits out a redis that does not answer, as it does a refused
# connect, and stops cleanly when told to.
$BUILD/jobq --redis redis://127.0.0.1:$(cat $fake/silent) worker --handler x=builtin:noop 2>$fake/worker.err &
wpid=$!
for i in $(seq 200); do grep -q "retrying in" $fake/worker.err && break; sleep 0.05; done
kill -TERM $wpid; wait $wpid; wrc=$?
[ $wrc -eq 0 ] || fail "worker against a silent server exited $wrc: $(cat $fake/worker.err)"
grep -q "no reply from redis within 5000 ms.*retrying in" $fake/worker.err || fail "worker did not retry: $(cat $fake/worker.err)"
touch "$fake/done"; wait; rm -rf "$fake"
printf "%s\n" "{\"tenant_id\":\"beta\",\"type\":\"report\",\"payload\":{\"rows\":[1,2]},\"priority\":\"low\"}" \
	"{\"tenant_id\":\"beta\",\"type\":\"report\",\"payload\":\"text\",\"max_attempts\":1}" >/tmp/cli-ok.$$
expect 0 "enqueued 2 jobs" sh -c "$J enqueue --stdin </tmp/cli-ok.$$"
# Empty and whitespace-only lines are skipped alike, and still counted.
printf "%s\n" "" "{\"tenant_id\":\"ws\",\"type\":\"x\"}" "   " "$(printf "\t \t")" "" " {\"tenant_id\":\"ws\",\"type\":\"x\"} " >/tmp/cli-ok.$$
printf "  \r\n" >>/tmp/cli-ok.$$
expect 0 "enqueued 2 jobs" sh -c "$BUILD/jobq --queue cliws enqueue --stdin </tmp/cli-ok.$$"
printf "%s\n" "" "  " "{\"tenant_id\":\"ws\",\"type\":\"x\",\"priority\":\"urgent\"}" >/tmp/cli-bad.$$
expect 1 "stdin line 3: priority must be" sh -c "$BUILD/jobq --queue cliws enqueue --stdin </tmp/cli-bad.$$"
printf "%s\n" "{\"tenant_id\":\"g\",\"type\":\"x\"}" "{\"tenant_id\":\"g\",\"type\":\"x\",\"priority\":\"urgent\"}" >/tmp/cli-bad.$$
expect 1 "stdin line 2: priority must be" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
# A NUL (\u0000) in a string is named as what it is, like other control characters.
printf "%s\n" "{\"tenant_id\":\"a\\u0000b\",\"type\":\"x\"}" >/tmp/cli-bad.$$
expect 1 "stdin line 1: tenant_id must not contain control characters (it holds a NUL, \\\\u0000)" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
printf "%s\n" "{\"tenant_id\":\"a\",\"type\":\"x\\u0000\"}" >/tmp/cli-bad.$$
expect 1 "stdin line 1: type must not contain control characters (it holds a NUL" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
printf "%s\n" "{\"tenant_id\":\"a\\u0001b\",\"type\":\"x\"}" >/tmp/cli-bad.$$
expect 1 "stdin line 1: tenant_id must not contain control characters" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
printf "%s\n" "{\"tenant_id\":7,\"type\":\"x\"}" >/tmp/cli-bad.$$
expect 1 "stdin line 1: tenant_id must be a string" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
printf "%s\n" "{\"tenant_id\":\"g\",\"type\":\"x\",}" >/tmp/cli-bad.$$
expect 1 "stdin line 1: invalid JSON at byte" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
# JSON text is UTF-8 (RFC 8259): a payload string that is not is refused.
printf "{\"tenant_id\":\"g\",\"type\":\"x\",\"payload\":\"\377\"}\n" >/tmp/cli-bad.$$
expect 1 "stdin line 1: invalid JSON at byte 39: invalid UTF-8 in string" sh -c "$J enqueue --stdin </tmp/cli-bad.$$"
# A line that is valid JSON but that the library rejects, after the first
# batch of 1000: it is named, every line before it is enqueued, the count
# is exact, exit 1. Same for invalid UTF-8 and a payload over the limit.
good="{\"tenant_id\":\"t\",\"type\":\"x\"}"
bad_line() {
	case $1 in
	1) echo "{\"tenant_id\":\"$(printf "%065d" 0)\",\"type\":\"x\"}" ;;
	2) echo "{\"tenant_id\":\"t\",\"type\":\"x$(printf "\377")\"}" ;;
	3) printf "{\"tenant_id\":\"t\",\"type\":\"x\",\"payload\":\""
	   head -c 1048577 /dev/zero | tr "\0" a; echo "\"}" ;;
	esac
}
for n in 1 2 3; do
	case $n in
	1) want="tenant_id must be at most 64 bytes" ;;
	2) want="invalid JSON at byte 26: invalid UTF-8 in string" ;; # the reader refuses it (RFC 8259) before the field check
	3) want="payload is 1048577 bytes, over the limit" ;;
	esac
	{ for i in $(seq 1 1500); do echo "$good"; done; bad_line $n; echo "$good"; } >/tmp/cli-bad.$$
	out=$($BUILD/jobq --queue clibig$n enqueue --stdin </tmp/cli-bad.$$ 2>&1); rc=$?
	[ $rc -eq 1 ] || fail "bad line 1501 ($want): exit $rc, want 1: $out"
	echo "$out" | grep -q "^jobq: stdin line 1501: $want" || fail "bad line 1501 not named ($want): $out"
	echo "$out" | grep -q "^jobq: 1500 jobs were enqueued in all, from stdin lines 1\.\.1500;" || fail "bad line 1501 ($want): count: $out"
	[ "$(echo "$out" | wc -l)" -eq 2 ] || fail "bad line 1501 ($want): more than two lines: $out"
	[ "$(redis-cli -p $REDIS_PORT LLEN "jobq:{clibig$n}:q:t:1")" = 1500 ] || fail "bad line 1501 ($want): not 1500 jobs in redis"
done
# Documented limits (docs/cli.md): a payload over the ~128 KiB argument
# limit goes through --stdin; a --stdin line is at most 2 MiB.
{ printf "{\"tenant_id\":\"big\",\"type\":\"x\",\"payload\":\""; head -c 300000 /dev/zero | tr "\0" a; echo "\"}"; } >/tmp/cli-bad.$$
expect 0 "enqueued 1 job$" sh -c "$BUILD/jobq --queue clilim enqueue --stdin </tmp/cli-bad.$$"
[ "$(redis-cli -p $REDIS_PORT HSTRLEN "jobq:{clilim}:job:1" payload)" = 300000 ] || fail "300000-byte payload through --stdin"
{ echo "$good"; printf "{\"tenant_id\":\"big\",\"type\":\"x\",\"payload\":\""; head -c 2097152 /dev/zero | tr "\0" a; echo "\"}"; } >/tmp/cli-bad.$$
expect 1 "^jobq: stdin line 2: longer than 2097152 bytes" sh -c "$BUILD/jobq --queue clilim enqueue --stdin </tmp/cli-bad.$$"
# Memory stays bounded by the line limit whatever the input: a 300 MB line
# under a 200 MB address-space limit still gets the message, not ENOMEM.
expect 1 "^jobq: stdin line 1: longer than 2097152 bytes" sh -c \
	"head -c 300000000 /dev/zero | tr '\\0' a | (ulimit -v 200000; exec $BUILD/jobq --queue clilim enqueue --stdin)"
# Redis refuses a job in the middle of a batch (its list key has the wrong
# type): exactly the enqueued lines are named, the others are not claimed.
# Batches of 1000 go out in pipelined groups of 256: line 1200 fails, the
# rest of its group (to line 1256) is enqueued, later groups are not sent.
redis-cli -p $REDIS_PORT SET "jobq:{climid}:q:broken:1" str >/dev/null
for i in $(seq 1 1500); do
	if [ $i = 1200 ]; then echo "{\"tenant_id\":\"broken\",\"type\":\"x\"}"; else echo "$good"; fi
done >/tmp/cli-bad.$$
out=$($BUILD/jobq --queue climid enqueue --stdin </tmp/cli-bad.$$ 2>&1); rc=$?
[ $rc -eq 1 ] || fail "batch failing mid-way: exit $rc, want 1: $out"
echo "$out" | grep -q "^jobq: stdin lines 1001\.\.1500: batch: 255 of 500 jobs enqueued, the rest not: .*WRONGTYPE" || fail "batch failing mid-way: $out"
echo "$out" | grep -q "^jobq: 1255 jobs were enqueued in all, from stdin lines 1\.\.1199, 1201\.\.1256; no job of any other line" || fail "batch failing mid-way: count: $out"
[ "$(redis-cli -p $REDIS_PORT LLEN "jobq:{climid}:q:t:1")" = 1255 ] || fail "batch failing mid-way: not 1255 jobs in redis"
rm -f /tmp/cli-ok.$$ /tmp/cli-bad.$$
expect 0 "" $J tenant set beta --weight 2.5 --cap 3
expect 2 "weight must be" $J tenant set beta --weight -1
out=$($J stats) || fail "stats"
echo "$out" | grep -Eq "^acme +1 +5 +0 " || fail "stats table: $out"
echo "$out" | grep -Eq "^beta +0 +1 +1 .* 2.5 +3$" || fail "stats table (beta): $out"
# Columns line up after a non-ASCII name (padding counts characters).
$J enqueue --tenant "caf$(printf "\303\251")" --type x >/dev/null || fail "enqueue café"
out=$($J stats) || fail "stats"
col() { echo "$out" | grep "^$1 " | python3 -c "import sys; print(len(sys.stdin.buffer.read().decode().rstrip()))"; }
[ "$(col acme)" = "$(col "caf$(printf "\303\251")")" ] || fail "stats rows of acme and café differ in width (in characters): $out"
$J stats --json | /usr/bin/python3 -c "
import json, sys
d = {t[\"tenant_id\"]: t for t in json.load(sys.stdin)}
assert d[\"acme\"][\"depth\"] == {\"high\": 1, \"normal\": 5, \"low\": 0}, d
assert d[\"beta\"][\"weight\"] == 2.5 and d[\"beta\"][\"cap\"] == 3, d
" || fail "stats --json"
# One failing job (max_attempts 1) lands in the dead-letter list.
$J worker --handler report=builtin:fail:1 --concurrency 1 2>/dev/null &
w=$!
for i in $(seq 1 300); do
	[ "$($J dead list --json | /usr/bin/python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" -ge 1 ] && break
	sleep 0.02
done
kill -TERM $w; wait $w || fail "worker exit status"
expect 0 "builtin:fail" $J dead list
expect 2 "ID must be a positive integer" $J dead retry abc
expect 1 "not in the dead-letter list" $J dead retry 99999
# Names and reasons written by other clients may hold control characters
# and bytes that are not UTF-8: --json stays valid JSON (RFC 8259) and
# valid UTF-8, and the values come back as they were (bad bytes as U+FFFD).
R="redis-cli -p $REDIS_PORT"
printf "bad\ntype" | $R -x HSET "jobq:{cli}:job:900" type >/dev/null
printf "ten\tant" | $R -x HSET "jobq:{cli}:job:900" tenant_id >/dev/null
printf "line 1\nline 2\001 \"q\" \\ caf\303\251 \377" | $R -x HSET "jobq:{cli}:job:900" dead_reason >/dev/null
$R LPUSH "jobq:{cli}:dead" 900 >/dev/null
printf "ctl\001tenant" | $R -x SADD "jobq:{cli}:tenants" >/dev/null
$J dead list --json | /usr/bin/python3 -c "
import json, sys
raw = sys.stdin.buffer.read()
raw.decode(\"utf-8\")  # strict: valid UTF-8
d = {e[\"id\"]: e for e in json.loads(raw)}[900]
assert d[\"type\"] == \"bad\ntype\" and d[\"tenant_id\"] == \"ten\tant\", d
assert d[\"reason\"] == \"line 1\nline 2\x01 \\\"q\\\" \\\\ caf\u00e9 \ufffd\", repr(d[\"reason\"])
" || fail "dead list --json with control characters"
$J stats --json | /usr/bin/python3 -c "
import json, sys
raw = sys.stdin.buffer.read()
raw.decode(\"utf-8\")
assert \"ctl\x01tenant\" in [t[\"tenant_id\"] for t in json.loads(raw)]
" || fail "stats --json with a control character in a tenant id"
# A bad tenant record is skipped with a warning; the others are shown.
$R SADD "jobq:{cli}:tenants" "$(printf "%070d" 0)" >/dev/null
out=$($J stats 2>/tmp/cli-err.$$) || fail "stats with a bad tenant record: $(cat /tmp/cli-err.$$)"
echo "$out" | grep -Eq "^acme " || fail "stats with a bad tenant record: $out"
grep -q "skipped bad record for tenant .*1 bad tenant records in all" /tmp/cli-err.$$ || fail "stats warning: $(cat /tmp/cli-err.$$)"
$J stats --json 2>/dev/null | /usr/bin/python3 -c "import json, sys; json.load(sys.stdin)" || fail "stats --json with a bad record"
$R SREM "jobq:{cli}:tenants" "$(printf "%070d" 0)" >/dev/null
rm -f /tmp/cli-err.$$
$J dead list | grep -q "bad\\\\ntype" || fail "dead list table: control characters not escaped: $($J dead list)"
$R HSET "jobq:{cli}:job:900" attempt 4294967298 >/dev/null
$J dead list | grep -Eq "^900 .* +\\?  line 1" || fail "dead list: out-of-range attempt not shown as ?: $($J dead list)"
$J dead list --json | /usr/bin/python3 -c "
import json, sys
assert {e[\"id\"]: e for e in json.load(sys.stdin)}[900][\"attempts\"] is None
" || fail "dead list --json: out-of-range attempt not null"
$R LREM "jobq:{cli}:dead" 0 900 >/dev/null
$R SREM "jobq:{cli}:tenants" "$(printf "ctl\001tenant")" >/dev/null
$R RPUSH "jobq:{cli}:dead" garbage-id >/dev/null # the oldest, cannot be requeued
expect 0 "requeued [1-9][0-9]* jobs*, skipped 1 that cannot be requeued" $J dead retry --all
expect 0 "requeued 0 jobs, skipped 1" $J dead retry --all
echo "ok: CLI"
'
