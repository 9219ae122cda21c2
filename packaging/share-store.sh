#!/usr/bin/env bash
# Lets a service user besides root write pam-guard's SQLite store (run as root):
#
#   share-store.sh STORE_DIR USER        e.g. share-store.sh /var/lib/pam-guard freerad
#
# Debian's FreeRADIUS drops to user freerad once it has read its config, so its pam-guard
# module cannot open a store that only root may write (it then refuses every login, per
# failure.on_store_error). This makes a system group pam-guard, puts USER in it, and gives
# the group the store directory (root:pam-guard 2770: files made there later, such as
# SQLite's -wal and -shm, keep the group) and the files in it (0660). pam-guard accepts a
# store directory its group may write only when that group is pam-guard
# (pam_guard/config.py); others may never write it. Safe to run again. USER picks the group
# up when its service restarts.
set -euo pipefail

GROUP=pam-guard

if [ $# -ne 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,4p' "$0" >&2
    exit 2
fi
STORE_DIR=$1
SERVICE_USER=$2
[ "$(id -u)" = 0 ] || { echo "share-store.sh: run as root" >&2; exit 1; }
[ -d "$STORE_DIR" ] || { echo "share-store.sh: no directory $STORE_DIR" >&2; exit 1; }
id "$SERVICE_USER" >/dev/null 2>&1 || { echo "share-store.sh: no user $SERVICE_USER" >&2; exit 1; }

getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
if ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx "$GROUP"; then
    usermod -a -G "$GROUP" "$SERVICE_USER"
fi
chown root:"$GROUP" "$STORE_DIR"
chmod 2770 "$STORE_DIR"
# The store, its WAL and shared memory, the change counters: every regular file there.
find "$STORE_DIR" -maxdepth 1 -type f -exec chgrp "$GROUP" {} + -exec chmod 0660 {} +
echo "share-store.sh: $SERVICE_USER may write the store in $STORE_DIR (group $GROUP)"
