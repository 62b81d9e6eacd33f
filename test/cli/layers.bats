#!/usr/bin/env bats
# The include rules of docs/architecture.md (scripts/check-layers.py): the tree obeys them, and
# the checker rejects each kind of violation in a throw-away tree.

setup() {
    load '/usr/lib/bats/bats-support/load'
    load '/usr/lib/bats/bats-assert/load'
    ROOT="$BATS_TEST_DIRNAME/../.."
    CHECK="$ROOT/scripts/check-layers.py"
    T="$BATS_TEST_TMPDIR/tree"
    mkdir -p "$T/lib/core" "$T/lib/format" "$T/lib/train" "$T/kernels/cuda" "$T/tools/a" "$T/tools/b"
    printf '/* */\n' > "$T/lib/core/sw_err.h"
    printf '#include "sw_err.h"\n' > "$T/lib/format/sw_stream.h"
    printf '#include "sw_stream.h"\n#include "sw_err.h"\n' > "$T/lib/train/sw_train.h"
    printf '#include "sw_err.h"\n' > "$T/kernels/sw_kernels.h"
    printf '/* */\n' > "$T/kernels/cuda/cuda_ops.h"
    printf '#include "sw_train.h"\n#include "sw_kernels.h"\n' > "$T/tools/a/a.c"
    printf '/* */\n' > "$T/tools/b/b.h"
}

@test "the repository obeys its layering rules" {
    run "$CHECK" "$ROOT"
    assert_success
}

@test "a clean tree passes" {
    run "$CHECK" "$T"
    assert_success
}

@test "an upward include fails and names file, line and both layers" {
    printf '#include "sw_err.h"\n#include "sw_train.h"\n' > "$T/lib/format/sw_bad.c"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "lib/format/sw_bad.c:2: upward include: lib/format/ (rank 1) includes lib/train/sw_train.h (rank 7)"
}

@test "a same-rank sibling include fails" {
    mkdir -p "$T/lib/tok"
    printf '#include "sw_stream.h"\n' > "$T/lib/tok/sw_tok.c"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "lib/tok/sw_tok.c:1: upward include"
}

@test "kernels/ may not include above lib/core" {
    printf '#include "sw_stream.h"\n' > "$T/kernels/cuda/x.cu"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "kernels/ includes only lib/core/"
}

@test "a backend's private header is private" {
    printf '#include "cuda_ops.h"\n' > "$T/lib/train/sw_x.c"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "private header kernels/cuda/cuda_ops.h"
}

@test "a tool may not include another tool's header" {
    printf '#include "../b/b.h"\n' > "$T/tools/a/x.c"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "includes another tool's header"
}

@test "#ifdef SW_CUDA outside kernels/ fails" {
    printf '#ifdef SW_CUDA\n#endif\n' > "$T/lib/train/sw_y.c"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "lib/train/sw_y.c:1: #if on SW_CUDA outside kernels/"
}

@test "an unknown lib folder must be given a rank" {
    mkdir -p "$T/lib/zzz"
    printf '#include "sw_err.h"\n' > "$T/lib/zzz/z.c"
    run "$CHECK" "$T"
    assert_failure
    assert_output --partial "lib/zzz/ is not a known layer"
}
