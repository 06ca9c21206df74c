#!/usr/bin/env bash
# Install the pinned npm packages of the OTLP test peer (tests/sidecar/peer)
# into its node_modules (gitignored). Idempotent: does nothing when the
# locked versions are already there. Needs node and npm (on the machine).
set -eu
cd "$(dirname "$0")/../tests/sidecar/peer"
want=$(node -p 'require("./package-lock.json").packages["node_modules/@opentelemetry/otlp-transformer"].version')
have=$(node -p 'try { require("./node_modules/@opentelemetry/otlp-transformer/package.json").version } catch (e) { "" }')
[ "$want" = "$have" ] && exit 0
echo "deps-npm.sh: installing the OTLP test peer's npm packages (otlp-transformer $want)" >&2
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
