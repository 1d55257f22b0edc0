#!/bin/sh
# Runs the update engine's daemon under busybox init (respawned if it exits). Its log goes to
# /var/log/update-engine.log and to the console, where its events (update applied, slot marked
# good, rollback) are visible like the rest of the boot. Images built without `update:` have no
# engine: then this only sleeps.
# No engine in this image, or no slot to update (a network boot runs /usr from RAM).
if [ ! -x /usr/bin/update-engine ] || [ -e /run/boot-live ]; then
	exec sleep 2147483647
fi
mkdir -p /var/log
/usr/bin/update-engine daemon 2>&1 | tee -a /var/log/update-engine.log >/dev/console
