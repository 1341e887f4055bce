#!/usr/bin/env bash
# Set up everything InvoiceGen needs on a fresh Debian machine: system packages (OCR, fonts, poppler),
# a virtualenv in .venv and the package with its dev tools. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa
  tesseract-ocr-ita tesseract-ocr-nld poppler-utils qpdf redis-server libharfbuzz-subset0
  fonts-dejavu-core fonts-liberation2 fonts-noto-core fonts-roboto fonts-open-sans fonts-freefont-ttf fonts-croscore
  nginx prometheus shellcheck)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # pin torch first: an unpinned resolve would pull a multi-GB CUDA build (ENVIRONMENT-NOTES)
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[dev,ray]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup ok: $(.venv/bin/invoicegen --version)"
