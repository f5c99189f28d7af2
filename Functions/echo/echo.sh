#!/bin/sh
# Echoes the request back: what was asked, then the body it was sent.
printf '%s %s' "$REQUEST_METHOD" "$PATH_INFO"
[ -n "$QUERY_STRING" ] && printf '?%s' "$QUERY_STRING"
printf '\n'
cat
