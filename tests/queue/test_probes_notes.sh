#!/usr/bin/env bash
# The USDT contract is in the built library: `readelf -n` on libjobq.so
# lists every probe of queue/jobq_probes.h under provider "jobq", each
# site with the argument count of JOBQ_PROBE_ARGC_<NAME>, a semaphore,
# and only operand forms libbpf 1.1 accepts (no memory operands with an
# index register such as 8@(%r8,%rcx,8)). docs/probes.md must state the
# same version and argument counts as the header.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
lib=$BUILD/libjobq.so
hdr=queue/jobq_probes.h
if ! command -v readelf >/dev/null; then
	echo "*** SKIP: readelf (binutils) is not installed ***" >&2
	exit 77
fi
[ -f "$lib" ] || { echo "FAIL: $lib not built" >&2; exit 1; }
notes=$(readelf -n "$lib") || { echo "FAIL: readelf -n $lib" >&2; exit 1; }
fail=0
for name in enqueue start finish retry dead_letter reap depth; do
	upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
	want=$(sed -n "s/^#define JOBQ_PROBE_ARGC_${upper} \([0-9][0-9]*\).*/\1/p" "$hdr")
	[ -n "$want" ] || { echo "FAIL: no JOBQ_PROBE_ARGC_$upper in $hdr"; fail=1; continue; }
	# One line per probe site: "<argc> <semaphore> <args...>"
	sites=$(echo "$notes" | awk -v n="$name" '
		/Provider:/ { prov = $2 }
		/Name:/ { nm = $2 }
		/Semaphore:/ { sem = $NF }
		/Arguments:/ { if (prov == "jobq" && nm == n) { sub(/.*Arguments: */, ""); print NF, sem, $0 } }')
	if [ -z "$sites" ]; then
		echo "FAIL: probe jobq:$name is missing from $lib"
		fail=1
		continue
	fi
	while read -r argc sem args; do
		if [ "$argc" != "$want" ]; then
			echo "FAIL: jobq:$name site has $argc arguments, the contract says $want ($args)"
			fail=1
		fi
		case $sem in 0x0 | 0x0000000000000000 | "")
			echo "FAIL: jobq:$name site has no semaphore"; fail=1 ;;
		esac
		if echo "$args" | grep -q '(%[a-z0-9]*,'; then
			echo "FAIL: jobq:$name uses an indexed memory operand libbpf 1.1 rejects: $args"
			fail=1
		fi
	done <<<"$sites"
	echo "ok: jobq:$name, $(echo "$sites" | wc -l) site(s), $want arguments"
	doc=$(sed -n "s/^| \`$name\` (\([0-9][0-9]*\)).*/\1/p" docs/probes.md)
	if [ "$doc" != "$want" ]; then
		echo "FAIL: docs/probes.md says jobq:$name has ${doc:-no} arguments, $hdr says $want"
		fail=1
	fi
done
ver=$(sed -n 's/^#define JOBQ_PROBES_VERSION \([0-9][0-9]*\).*/\1/p' "$hdr")
if ! tr '\n' ' ' <docs/probes.md | grep -q "JOBQ_PROBES_VERSION\` *$ver)"; then
	echo "FAIL: docs/probes.md does not state JOBQ_PROBES_VERSION $ver"
	fail=1
fi
exit $fail
