# Shared by dev/run, dev/test and dev/bench: build-tree locations and a configure+build
# step that reuses ccache and never reconfigures a tree that is already configured.
# shellcheck shell=bash

AGENTD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}

# build_tree DIR [cmake -D options...]: configure once, then build ($BUILD_TARGETS, or all).
build_tree() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$AGENTD_ROOT" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER_LAUNCHER=ccache "$@" >/dev/null
  fi
  # Progress lines are dropped; compiler messages and errors stay.
  ninja -C "$dir" ${BUILD_TARGETS:-} | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }
  return "${PIPESTATUS[0]}"
}
