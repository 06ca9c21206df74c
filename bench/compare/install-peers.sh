#!/usr/bin/env bash
# Install the systems bench/compare runs jobq against, from this machine's
# package sources only. Idempotent: does nothing (and needs no network) when
# everything is present. A peer that cannot be installed is reported here and
# shown as "not installed" in the results; it is never faked.
#   Debian: python3-rq (RQ), python3-celery (Celery), ruby-sidekiq (Sidekiq),
#           gnuplot-nox (plots), nodejs
#   npm (pinned by package-lock.json, into bench/compare/node_modules):
#           bullmq, the OpenTelemetry JS SDK and OTLP exporters
set -u
cd "$(dirname "$0")"
rc=0

missing=""
for p in python3-rq python3-celery ruby-sidekiq gnuplot-nox nodejs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-peers.sh: missing packages:$missing (run as root to install them)" >&2
		rc=1
	else
		echo "install-peers.sh: installing:$missing" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2 || true
		for p in $missing; do
			# One at a time so one unavailable peer does not block the others.
			apt-get install -y -qq --no-install-recommends "$p" >/dev/null ||
				{ echo "install-peers.sh: cannot install $p" >&2; rc=1; }
		done
	fi
fi

if ! command -v npm >/dev/null; then
	echo "install-peers.sh: npm not found: BullMQ and the OpenTelemetry JS SDK cannot be installed" >&2
	exit 1
fi
want=$(node -p 'require("./package-lock.json").packages["node_modules/bullmq"].version')
have=$(node -p 'try { require("./node_modules/bullmq/package.json").version } catch (e) { "" }')
if [ "$want" != "$have" ]; then
	echo "install-peers.sh: installing npm packages (bullmq $want, OpenTelemetry JS SDK)" >&2
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2 ||
		{ echo "install-peers.sh: npm ci failed: BullMQ is not available" >&2; rc=1; }
fi
exit $rc
