#!/usr/bin/env bash
# Run each test program given as an argument; exit status 0 = pass,
# 77 = skipped (the test printed why), 124 = timed out, anything else =
# fail. Prints one
# line per test and a closing "N passed, N failed, N skipped" line.
set -u
pass=0 fail=0 skip=0 failed=()
for t in "$@"; do
	[ -n "$t" ] || continue
	start=$(date +%s.%N)
	log=$(mktemp)
	timeout -k 10 "${TEST_TIMEOUT:-900}" "$t" >"$log" 2>&1
	rc=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0)  pass=$((pass + 1)); echo "PASS  $t (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP  $t (${secs}s):"; sed 's/^/    /' "$log" | tail -n 5 ;;
	*)  fail=$((fail + 1)); failed+=("$t"); echo "FAIL  $t (exit $rc, ${secs}s):"
	    sed 's/^/    /' "$log" | tail -n 60 ;;
	esac
	[ -n "${VERBOSE:-}" ] && cat "$log"
	rm -f "$log"
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
