# Sourced by test.sh: the Debian packages the browser tests need (Chromium, its driver and a
# CJK font so screenshots show Chinese). Installed once, only where apt-get and root exist;
# elsewhere the browser tests say what is missing.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
fc-list 2>/dev/null | grep -qi "noto sans cjk" || need+=(fonts-noto-cjk)
if [ "${#need[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian packages for the browser tests: ${need[*]}" >&2
    apt-get install -y -q "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >/dev/null; }
  else
    echo "warning: the browser tests need: ${need[*]} (apt-get install as root)" >&2
  fi
fi
