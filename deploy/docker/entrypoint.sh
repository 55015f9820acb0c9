#!/bin/sh
# Container entry point: `coordinator [flags]` or `peer [flags]`, the same flags as
# `npm run coordinator` / `npm run peer` (and every flag also as a RINGPIPE_* variable).
# exec: the node process receives SIGTERM itself and checkpoints before it stops.
set -eu
app_dir=$(cd "$(dirname "$0")/../.." && pwd)
role="${1:-}"
case "$role" in
  coordinator | peer) shift ;;
  *)
    echo "usage: ringpipe coordinator|peer [flags]   (ringpipe peer --help lists the flags)" >&2
    [ -z "$role" ] || echo "ringpipe: unknown role '$role'" >&2
    exit 2
    ;;
esac
cd "$app_dir"
exec node --import tsx "scripts/$role.ts" "$@"
