#!/usr/bin/env bash
# System packages the toolkit and its tests use: exiftool (EXIF for CR3/RAF/MP4), socat (virtual serial
# pairs), chromium (the review UI check), postgresql (a team's Label Studio server; the tests start a throwaway
# cluster with its initdb/pg_ctl, as its `postgres` user when run as root). Idempotent: does nothing when they are already there.
set -euo pipefail
need=()
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-system-deps: missing ${need[*]}; run as root: apt-get install -y ${need[*]}" >&2
    exit 0
  fi
else SUDO=""; fi
$SUDO apt-get update -qq
echo "installing system packages: ${need[*]}"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
