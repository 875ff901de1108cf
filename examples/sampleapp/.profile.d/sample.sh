# Sourced at dyno start, after config vars: a default that a config var can override.
: "${GREETING:=Hello World}"
export GREETING
