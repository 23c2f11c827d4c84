#!/usr/bin/env bash
# Finds the browser the console's browser test drives (Debian's chromium
# package) and prints its path; installs it with apt-get when it is missing
# and this runs as root, saying what it fetches. Exits 1, saying why, when
# there is no chromium and it cannot install one: the browser test then
# fails rather than skips.
#
#   WEFT_CHROMIUM=$(scripts/chromium.sh)
set -euo pipefail

if [[ -n "${WEFT_CHROMIUM:-}" ]]; then
  if [[ -x "$WEFT_CHROMIUM" ]]; then echo "$WEFT_CHROMIUM"; exit 0; fi
  echo "WEFT_CHROMIUM=$WEFT_CHROMIUM is not an executable" >&2
  exit 1
fi
for name in chromium chromium-browser; do
  if path=$(command -v "$name" 2>/dev/null); then echo "$path"; exit 0; fi
done

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian package chromium, with its dependencies) for the console's browser test" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  path=$(command -v chromium)
  echo "installed $("$path" --version 2>/dev/null || echo chromium) at $path" >&2
  echo "$path"
  exit 0
fi
echo "chromium is required for the console's browser test: install Debian's chromium package (apt-get install chromium) or set WEFT_CHROMIUM" >&2
exit 1
