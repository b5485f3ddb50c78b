# Shared helpers of scripts/measure/*.sh: sourced after the script sets USAGE, never run alone.
# shellcheck shell=bash disable=SC2034
me=$(basename "$0")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {  # die MESSAGE: a named error, exit 2
  echo "$me: error: $*" >&2
  exit 2
}

usage_error() {  # usage_error MESSAGE: the usage line, then the named error
  echo "usage: $USAGE" >&2
  die "$@"
}

need_tool() {  # need_tool NAME WHY
  command -v "$1" >/dev/null 2>&1 || die "missing tool '$1' ($2)"
}

need_count() {  # need_count NAME VALUE: a positive integer argument
  [[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 must be a positive integer, got '$2'"
}

need_build() {  # need_build DIR: a release build dir (or a flat folder) holding libtmr.so.0
  [[ -d $1 ]] || usage_error "BUILD_DIR '$1' is not a directory"
  [[ -e $1/libtmr.so.0 ]] || die "no libtmr.so.0 in '$1': not a release build dir"
}

# build_bin DIR NAME: the executable NAME of a release build dir (its root, bench/*/, src/cli/) or
# of a flat folder. Checks that, with LD_LIBRARY_PATH=DIR, it loads DIR's libtmr: a copied build's
# binaries keep their RUNPATH, which LD_LIBRARY_PATH overrides, but a DT_RPATH would not, and the
# figures would then be another build's.
build_bin() {
  local dir=$1 name=$2 c found=""
  for c in "$dir/$name" "$dir/src/cli/$name" "$dir/bench/profile/$name" \
    "$dir/bench/micro/$name" "$dir/bench/peers/$name"; do
    if [[ -f $c && -x $c ]]; then
      found=$c
      break
    fi
  done
  [[ -n $found ]] || die "no executable '$name' in '$dir' (looked in ., src/cli, bench/{profile,micro,peers})"
  local lib
  lib=$(LD_LIBRARY_PATH=$dir ldd "$found" 2>/dev/null | awk '$1 == "libtmr.so.0" {print $3}')
  if [[ -n $lib && $(realpath "$lib") != $(realpath "$dir/libtmr.so.0") ]]; then
    die "'$found' loads $lib, not $dir/libtmr.so.0 (an RPATH?): its figures would not be this build's"
  fi
  echo "$found"
}

# cg_total FILE: the collected instructions (Ir) of one callgrind output file.
cg_total() {
  local v
  v=$(awk '$1 == "summary:" || $1 == "totals:" {print $2; exit}' "$1")
  [[ -n $v ]] || die "no summary line in callgrind output '$1'"
  echo "$v"
}
