# Stage helpers of the recipe's shell scripts (prepare.sh, run.sh), sourced by them. The caller defines
# $stage and $stop_stage. Messages name the script ($script_name, default: the caller's file name).

script_name=${script_name:-${0##*/}}
die() { echo "$script_name: error: $*" >&2; exit 1; }
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') ($script_name) $*"; }
banner() { echo; echo "==== $(date '+%Y-%m-%d %H:%M:%S') $script_name stage $* ===="; }

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

# Dies (with the caller's `die`) unless option $1's value $2 is an integer in [$3, $4].
require_int() {
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 expects an integer, got '$2'"
  (( $2 >= $3 && $2 <= $4 )) || die "$1 must be between $3 and $4, got $2"
}
