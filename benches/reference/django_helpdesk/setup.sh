#!/usr/bin/env bash
# Install django-helpdesk (PyPI, pinned in requirements.txt) into a venv for benches/email_import.rs.
# Usage: benches/reference/django_helpdesk/setup.sh [VENV]   (default /var/tmp/switchboard-tools/django-helpdesk-venv)
# Uses Debian's /usr/bin/python3 (3.11 on Debian 12) when present, else python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${DJANGO_HELPDESK_VENV:-/var/tmp/switchboard-tools/django-helpdesk-venv}}"
python=/usr/bin/python3
[ -x "$python" ] || python="$(command -v python3)"
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import helpdesk, django' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
fi
"$venv/bin/python" -c 'import django, importlib.metadata as m; print("django", django.get_version(), "django-helpdesk", m.version("django-helpdesk"))'
