#!/bin/sh
# Container entry point: `coordinator [flags]` or `peer [flags]`, the same flags as
# `npm run coordinator` / `npm run peer` (and every flag also as a RINGPIPE_* variable).
# exec: the node process receives SIGTERM itself and checkpoints before it stops.
set -eu
app_dir=$(cd "$(dirname "$0")/../.." && pwd)
role="${1:-}"
case "$role" in
  coordinator) shift ;;
  # A peer serves its probes on a port of its own (the coordinator on its dashboard port):
  # 8080 unless set, and an explicitly empty RINGPIPE_HEALTH_PORT switches them off.
  peer)
    shift
    export RINGPIPE_HEALTH_PORT="${RINGPIPE_HEALTH_PORT-8080}"
    ;;
  *)
    echo "usage: ringpipe coordinator|peer [flags]   (ringpipe peer --help lists the flags)" >&2
    [ -z "$role" ] || echo "ringpipe: unknown role '$role'" >&2
    exit 2
    ;;
esac
cd "$app_dir"
exec node --import tsx "scripts/$role.ts" "$@"
