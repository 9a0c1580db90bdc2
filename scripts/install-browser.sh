#!/usr/bin/env sh
# Install Debian's Chromium for the web app's browser test (tests/test_web_page.py) when it is missing.
# It never fails the install: without a browser that one test is skipped and says why.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test (apt-get)..."
  if apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; then
    exit 0
  fi
  echo "note: apt-get could not install chromium; the browser test will be skipped"
else
  echo "note: chromium is not installed and this user cannot install it (needs root and apt-get: apt-get install chromium);"
  echo "      the browser test will be skipped"
fi
exit 0
