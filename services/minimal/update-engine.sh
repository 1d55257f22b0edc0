#!/bin/sh
# Runs the update engine's daemon under busybox init (respawned if it exits), logging to
# /var/log/update-engine.log. Images built without `update:` have no engine: then this sleeps.
if [ ! -x /usr/bin/update-engine ]; then
	exec sleep 2147483647
fi
mkdir -p /var/log
exec /usr/bin/update-engine daemon >>/var/log/update-engine.log 2>&1
