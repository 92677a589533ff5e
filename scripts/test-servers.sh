#!/usr/bin/env bash
# The Debian servers the tests start on free loopback ports: redis-server,
# proftpd with mod_tls (FTPS), and Ceph's RADOS Gateway (a real S3 store that
# enforces Object Lock; test/helpers/worm-s3.sh), and promtool (Debian
# prometheus) to check /metrics as Prometheus reads it, php-cli, php-curl, phpunit and chromium.
# Installs what is missing when it can (root, or sudo without a password);
# otherwise says exactly what to run.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# mod_tls.so (FTPS) ships in proftpd-mod-crypto, not in proftpd-core.
{ command -v proftpd >/dev/null 2>&1 && [ -f /usr/lib/proftpd/mod_tls.so ]; } || need+=(proftpd-core proftpd-mod-crypto)
{ command -v radosgw >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1 && command -v ceph-osd >/dev/null 2>&1; } || need+=(ceph-mon ceph-osd radosgw)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# NATS with JetStream for the nats driver's tests (they start their own servers on free ports).
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
# php-cli runs the PHP webhook receiver the docs quote (examples/webhook-receiver.php).
command -v php >/dev/null 2>&1 || need+=(php-cli)
# PHPUnit 9 runs the Moodle plugins' logic that needs no Moodle (test/moodle/local-depot-php.test.ts).
command -v phpunit >/dev/null 2>&1 || need+=(phpunit)
# PHP's curl extension: archivingstore_depot's client talks to depot serve with it (test/moodle/archivingstore-depot-php.test.ts).
{ command -v php >/dev/null 2>&1 && php -r 'exit(extension_loaded("curl") ? 0 : 1);'; } || need+=(php-curl)
# Headless Chromium loads the dashboard as an operator's browser does (test/http/dashboard-browser.test.ts).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "tests need: ${need[*]}; install them with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "installing the test servers: ${need[*]}" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
