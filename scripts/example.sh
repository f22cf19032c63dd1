#!/usr/bin/env bash
# The README's main job: set-up (system packages, npm packages, the bundle), then a real build of
# examples/hello with kiln, pushed to a throw-away registry on 127.0.0.1 (see scripts/example.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx tsx scripts/example.ts
