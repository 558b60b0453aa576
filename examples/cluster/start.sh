#!/bin/sh
# Two account servers (4000, 4010) + two example API servers (4001, 4011) on local PostgreSQL and
# Redis. Settings: see README.md in this folder. Ctrl-C stops all four.
set -e
cd "$(dirname "$0")/../.."
exec node --import tsx examples/cluster/start.ts "$@"
