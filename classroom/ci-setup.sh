#!/usr/bin/env bash
# What the class-server tests (tests/test_hub.py, tests/test_shared_cache.py) need on a fresh Debian machine, run as
# root by CI before `make test`:  bash classroom/ci-setup.sh [VENV]
#   - Node.js and npm for configurable-http-proxy, installed from package-lock.json (npm ci) when missing;
#   - PAM, the account tools (useradd, chpasswd, setpriv) and git, which Debian usually has already;
#   - traverse permission (o+x, not read: nobody can list the folders) on the folders above the Python
#     interpreter, this checkout and the venv, so the test accounts can run the course environment (a
#     pyenv Python or a venv under /root is otherwise out of their reach).
# Without these the hub tests skip with the reason; nothing here is needed by a student's laptop.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
venv="${1:-.venv}"

need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v git >/dev/null || need+=(git)
command -v setpriv >/dev/null || need+=(util-linux)
command -v useradd >/dev/null || need+=(passwd)
command -v pkill >/dev/null || need+=(procps)
ldconfig -p | grep -q 'libpam\.so\.0' || need+=(libpam0g)
[ -e /etc/pam.d/login ] || need+=(login)
if ((${#need[@]})); then
  echo "classroom/ci-setup.sh: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -x node_modules/.bin/configurable-http-proxy ] || npm ci --no-audit --no-fund --loglevel=error

# o+x on every existing folder from / down to each of these paths
reach() {
  local p
  p="$(realpath -m "$1")"
  while [ "$p" != "/" ]; do
    if [ -d "$p" ] && [ "$(( 0$(stat -c '%a' "$p") & 1 ))" -eq 0 ]; then
      echo "classroom/ci-setup.sh: chmod o+x $p (so the test accounts can reach the course environment)"
      chmod o+x "$p"
    fi
    p="$(dirname "$p")"
  done
}
reach "$(command -v python3 | xargs realpath)"
reach "$(python3 -c 'import sys; print(sys.base_prefix)')/lib"
reach "$PWD/vaeutils"
reach "$venv/bin"
echo "classroom/ci-setup.sh: ready (node $(node --version), configurable-http-proxy $(node_modules/.bin/configurable-http-proxy --version))"
