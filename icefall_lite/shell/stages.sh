# Stage helpers of the recipe's shell scripts (prepare.sh, run.sh), sourced by them. The caller defines
# $stage and $stop_stage and a `log` function.

# True when stage $1 is within --stage .. --stop-stage.
run_stage() { (( stage <= $1 && $1 <= stop_stage )); }

# Runs "$@" unless MARKER ($1) exists, then creates MARKER: finished work is never redone.
run_once() {
  local marker=$1; shift
  if [[ -e "$marker" ]]; then log "already done ($marker)"; return; fi
  mkdir -p "$(dirname "$marker")"
  "$@"
  touch "$marker"
}
