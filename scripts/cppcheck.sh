#!/bin/sh
# Static analysis of src/ and reference/ with cppcheck (Debian package
# cppcheck): warnings, portability and performance checks; any finding fails.
# A false positive is suppressed where it occurs, with a reason:
#     // cppcheck-suppress ID ; why
set -eu
cd "$(dirname "$0")/.."
exec cppcheck -q --std=c11 --enable=warning,portability,performance \
    --inline-suppr --error-exitcode=1 -j"$(nproc)" \
    -I reference -I src -I kernels \
    -D__BYTE_ORDER__=1234 -D__ORDER_LITTLE_ENDIAN__=1234 \
    src reference
