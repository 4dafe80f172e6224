#!/bin/sh
# Regenerates man/authctl.1 from authctl's own help (swift-argument-parser's
# GenerateManual plugin), so every subcommand and option is in it. authd(8)
# and authd.conf(5) are written by hand in man/; a test checks all three
# against the binaries (ManualPageTests). Run after changing authctl's
# commands, and commit the result.
set -eu
cd "$(dirname "$0")/.."
date=${MANUAL_DATE:-$(git log -1 --format=%cs 2>/dev/null || date +%F)}
swift package --allow-writing-to-package-directory generate-manual --configuration debug --date "$date" \
    >/dev/null
# mdoc has no empty lines: a paragraph break is .Pp (else man --warnings,
# and lintian, complain).
sed 's/^$/.Pp/' .build/plugins/GenerateManual/outputs/authctl/authctl.1 > man/authctl.1
echo "wrote man/authctl.1"
