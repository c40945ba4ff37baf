# Sourced by .ci/run (set -euo pipefail): tools for the report tests.
#   - the Allure command line (npm allure-commandline, runs on Java 17)
#   - playwright-core, to drive Debian's headless Chromium from the browser check
#   - Debian's chromium
# Idempotent and fast when everything is already there. The tests find the tools in
# $PYTEST_CHAOS_REPORT_TOOLS (default /opt/pytest-chaos-reports).

PYTEST_CHAOS_REPORT_TOOLS="${PYTEST_CHAOS_REPORT_TOOLS:-/opt/pytest-chaos-reports}"
export PYTEST_CHAOS_REPORT_TOOLS

if ! command -v java >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! command -v chromium >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if [ ! -x "$PYTEST_CHAOS_REPORT_TOOLS/node_modules/.bin/allure" ] \
    || [ ! -d "$PYTEST_CHAOS_REPORT_TOOLS/node_modules/playwright-core" ]; then
    mkdir -p "$PYTEST_CHAOS_REPORT_TOOLS"
    # playwright-core must not try to download browsers: Debian's chromium is used.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
        --prefix "$PYTEST_CHAOS_REPORT_TOOLS" allure-commandline@2 playwright-core@1
fi
"$PYTEST_CHAOS_REPORT_TOOLS/node_modules/.bin/allure" --version
chromium --version
