#!/usr/bin/env bats
# sw-fetch against the mock hub (test/hub/mock_hub.py, started once for this file on a free
# port): huggingface_hub's cache layout, globs, --dry_run, --local_dir, resumption after a
# dropped connection and after a killed process (identical bytes), 429/503 retries, wrong
# sha256 detected and nothing unverified left in place, corrupted cached blobs found by --verify,
# unsafe names refused, gated repos, tokens kept off the CDN, offline mode and the fallback when
# the hub is down, the ModelScope API, and interoperation with huggingface_hub (skipped with a
# reason when the Python package is missing).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup_file() {
    export ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    export FETCH="${SW_BIN:-$ROOT/bin}/sw-fetch"
    export HUBTOOL="$ROOT/test/hub/hubtool.py"
    export REPOS="$BATS_FILE_TMPDIR/repos"
    export PORTFILE="$BATS_FILE_TMPDIR/port.json"
    python3 "$HUBTOOL" make-repos "$REPOS"
    python3 "$HUBTOOL" start "$REPOS" "$PORTFILE" "$BATS_FILE_TMPDIR/mock.log" "$BATS_ROOT_PID" \
        > "$BATS_FILE_TMPDIR/mock.pid"
    export PORT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$PORTFILE")"
}

teardown_file() {
    [ -f "$BATS_FILE_TMPDIR/mock.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/mock.pid")" 2>/dev/null || true
}

setup() {
    # Every test starts from an empty cache and no ambient credentials or switches.
    unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_CACHE HUGGINGFACE_HUB_CACHE \
          HF_HUB_OFFLINE TRANSFORMERS_OFFLINE USE_HF MODELSCOPE_API_TOKEN XDG_CACHE_HOME
    export HF_ENDPOINT="http://127.0.0.1:$PORT"
    export MODELSCOPE_DOMAIN="http://127.0.0.1:$PORT"
    export HF_HOME="$BATS_TEST_TMPDIR/hf"
    export MODELSCOPE_CACHE="$BATS_TEST_TMPDIR/ms"
    export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1
    export SW_PROGRESS=0
}

run_split() { # run with stdout and stderr captured separately
    run bash -c '"$@" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"' _ "$@"
}
out() { cat "$BATS_TEST_TMPDIR/out"; }
err() { cat "$BATS_TEST_TMPDIR/err"; }
stat_of() { python3 "$HUBTOOL" stat "$PORTFILE" "$1"; }
reset_mock() { python3 "$HUBTOOL" reset "$PORTFILE"; } # fault counters and stats

# Every file of repo folder $1 is byte-identical under folder $2 (and nothing else is there).
same_tree() {
    (cd "$1" && find . -type f ! -name .mock.json | sort) > "$BATS_TEST_TMPDIR/want"
    (cd "$2" && find -L . -type f ! -path './.cache/*' | sort) > "$BATS_TEST_TMPDIR/got"
    diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got" || return 1
    while read -r f; do cmp "$1/$f" "$2/$f" || return 1; done < "$BATS_TEST_TMPDIR/want"
}

@test "fetch: huggingface_hub's cache layout, blobs named by sha256 / git blob id, relative links" {
    run_split "$FETCH" org/tiny
    assert_success
    snap="$(out)"
    [[ "$snap" =~ ^$HF_HOME/hub/models--org--tiny/snapshots/[0-9a-f]{40}$ ]]
    commit="$(basename "$snap")"
    [ "$(cat "$HF_HOME/hub/models--org--tiny/refs/main")" = "$commit" ]
    same_tree "$REPOS/models/org/tiny" "$snap"
    # LFS file: blob named by its sha256; plain file: by its git blob sha1; links are relative.
    read -r sha _ < <(python3 "$HUBTOOL" ids "$REPOS/models/org/tiny/model.safetensors")
    [ "$(readlink "$snap/model.safetensors")" = "../../blobs/$sha" ]
    read -r _ oid < <(python3 "$HUBTOOL" ids "$REPOS/models/org/tiny/sub/deeper/notes.md")
    [ "$(readlink "$snap/sub/deeper/notes.md")" = "../../../../blobs/$oid" ]
    [ -f "$HF_HOME/hub/models--org--tiny/trees/$commit.json" ]
    [ -z "$(find "$HF_HOME" -name '*.incomplete')" ]
    grep -q "5 files fetched" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: a second run transfers nothing and prints the same folder" {
    reset_mock
    run "$FETCH" -q org/tiny
    assert_success
    first="$output"
    gets="$(stat_of file_get)"
    run_split "$FETCH" org/tiny
    assert_success
    [ "$(out)" = "$first" ]
    [ "$(stat_of file_get)" = "$gets" ]
    grep -q "0 files fetched (0 bytes), 0 linked, 5 already in place" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: --include / --exclude globs (repeated, comma lists, folder patterns)" {
    run "$FETCH" -q --include '*.json' org/tiny
    assert_success
    [ "$(cd "$output" && find -L . -type f | sort | tr '\n' ' ')" = "./config.json ./tokenizer.json " ]
    rm -rf "$HF_HOME"
    run "$FETCH" -q --include '*.json' --include 'sub/' --exclude '*.md,tokenizer*' org/tiny
    assert_success
    [ "$(cd "$output" && find -L . -type f | sort | tr '\n' ' ')" = "./config.json ./sub/readme.txt " ]
    rm -rf "$HF_HOME"
    # '*' crosses '/' as in Python's fnmatch (huggingface_hub's allow_patterns).
    run "$FETCH" -q --include '*.md' org/tiny
    assert_success
    [ "$(cd "$output" && find -L . -type f)" = "./sub/deeper/notes.md" ]
    run_split "$FETCH" --include 'nothing*' org/tiny
    assert_success
    grep -q "no file of model org/tiny matched" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: explicit file names; a missing one is an error; a glob there is a usage error" {
    run "$FETCH" -q org/tiny config.json sub/readme.txt
    assert_success
    [ "$(cd "$output" && find -L . -type f | sort | tr '\n' ' ')" = "./config.json ./sub/readme.txt " ]
    run_split "$FETCH" org/tiny no-such-file.bin
    assert_failure 1
    grep -q "error: model org/tiny has no file 'no-such-file.bin' at revision main" "$BATS_TEST_TMPDIR/err"
    run_split "$FETCH" org/tiny '*.json'
    assert_failure 2
    grep -q "looks like a pattern: use --include" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: --dry_run lists size, state and path, and writes nothing" {
    run_split "$FETCH" --dry_run org/tiny
    assert_success
    [ ! -e "$HF_HOME" ]
    grep -qx $'300000\tfetch\tmodel.safetensors' "$BATS_TEST_TMPDIR/out"
    grep -qx $'12\tfetch\tsub/readme.txt' "$BATS_TEST_TMPDIR/out"
    [ "$(out | wc -l)" -eq 5 ]
    grep -q "dry run: 5 files would be fetched" "$BATS_TEST_TMPDIR/err"
    "$FETCH" -q org/tiny config.json > /dev/null
    run_split "$FETCH" --dry_run org/tiny
    assert_success
    grep -qx $'42\tcached\tconfig.json' "$BATS_TEST_TMPDIR/out"
    grep -q "4 files would be fetched" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: --local_dir gives plain files and huggingface_hub's download metadata" {
    reset_mock
    run_split "$FETCH" --local_dir "$BATS_TEST_TMPDIR/plain" org/tiny
    assert_success
    [ "$(out)" = "$BATS_TEST_TMPDIR/plain" ]
    same_tree "$REPOS/models/org/tiny" "$BATS_TEST_TMPDIR/plain"
    [ -z "$(find "$BATS_TEST_TMPDIR/plain" -type l)" ]
    [ ! -e "$HF_HOME" ]
    meta="$BATS_TEST_TMPDIR/plain/.cache/huggingface/download/model.safetensors.metadata"
    read -r sha _ < <(python3 "$HUBTOOL" ids "$REPOS/models/org/tiny/model.safetensors")
    [ "$(sed -n 2p "$meta")" = "$sha" ]
    [[ "$(sed -n 1p "$meta")" =~ ^[0-9a-f]{40}$ ]]
    gets="$(stat_of file_get)"
    run "$FETCH" --local_dir "$BATS_TEST_TMPDIR/plain" org/tiny
    assert_success
    [ "$(stat_of file_get)" = "$gets" ]
}

@test "fetch: a connection dropped mid-file resumes with Range; 429 (Retry-After) and 503 retried" {
    reset_mock
    run_split "$FETCH" -v org/faults
    assert_success
    same_tree "$REPOS/models/org/faults" "$(out)"
    [ "$(stat_of range_starts)" = "big.bin:1000000" ]
    [ "$(stat_of by_path:rl.json)" -eq 1 ]  # the two 429s sent no file
    grep -q "'big.bin': transfer stopped at byte 1000000" "$BATS_TEST_TMPDIR/err"
    grep -q "'rl.json': server busy; retry 2 of 5" "$BATS_TEST_TMPDIR/err"
    grep -q "'s503.txt': server busy; retry 1 of 5" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: an interrupted process keeps its partial file; the next run resumes it (identical bytes)" {
    reset_mock
    echo '{"faults": {"w.bin": {"throttle": 400000}}}' > "$REPOS/models/org/slow/.mock.json"
    "$FETCH" org/slow > "$BATS_TEST_TMPDIR/out1" 2> "$BATS_TEST_TMPDIR/err1" &
    pid=$!
    blobs="$HF_HOME/hub/models--org--slow/blobs"
    for _ in $(seq 100); do # the partial file appears when the transfer starts (~5 s long)
        part="$(find "$blobs" -name '*.incomplete' 2>/dev/null | head -1)"
        [ -n "$part" ] && break
        sleep 0.1
    done
    sleep 1
    kill -INT "$pid"
    rc=0
    wait "$pid" || rc=$?
    echo '{}' > "$REPOS/models/org/slow/.mock.json"
    [ "$rc" -eq 130 ]
    grep -q "partial downloads are kept" "$BATS_TEST_TMPDIR/err1"
    [ -n "$part" ] && [ -f "$part" ]
    kept=$(stat -c %s "$part")
    [ "$kept" -gt 0 ] && [ "$kept" -lt 2000000 ]
    # Nothing unverified at a final name: no blob, no snapshot entry.
    [ "$(find "$blobs" -type f ! -name '*.incomplete' | wc -l)" -eq 0 ]
    [ -z "$(find "$HF_HOME/hub/models--org--slow/snapshots" -name w.bin)" ]
    python3 "$HUBTOOL" reset "$PORTFILE"
    run_split "$FETCH" org/slow
    assert_success
    [ "$(stat_of range_starts)" = "w.bin:$kept" ]
    cmp "$REPOS/models/org/slow/w.bin" "$(out)/w.bin"
    [ -z "$(find "$blobs" -name '*.incomplete')" ]
}

@test "fetch: bytes not matching the published sha256 / git id fail naming the file; nothing corrupt kept" {
    run_split "$FETCH" org/corrupt
    assert_failure 1
    grep -q "error: 'bad.bin': the downloaded bytes do not match the sha256 the hub published" "$BATS_TEST_TMPDIR/err"
    grep -q "'bad.txt': the downloaded bytes do not match the git blob sha1" "$BATS_TEST_TMPDIR/err"
    [ -z "$(out)" ]
    repo="$HF_HOME/hub/models--org--corrupt"
    # good.txt is in place; neither bad file exists under any name, not even partially.
    [ "$(find "$repo/blobs" -type f | wc -l)" -eq 1 ]
    [ -z "$(find "$repo" -name '*.incomplete')" ]
    [ -n "$(find "$repo/snapshots" -name good.txt)" ]
    [ -z "$(find "$repo/snapshots" -name 'bad.*')" ]
}

@test "fetch: a corrupted blob in the cache is found by --verify and fetched again" {
    run "$FETCH" -q org/tiny
    assert_success
    snap="$output"
    blob="$(readlink -f "$snap/model.safetensors")"
    printf '\x00\x01' | dd of="$blob" bs=1 seek=1000 conv=notrunc status=none
    ! cmp -s "$blob" "$REPOS/models/org/tiny/model.safetensors"
    run_split "$FETCH" --verify org/tiny
    assert_success
    grep -q "warning: 'model.safetensors': the copy in place .* does not match its sha256; fetching it again" "$BATS_TEST_TMPDIR/err"
    cmp "$blob" "$REPOS/models/org/tiny/model.safetensors"
    grep -q "1 files fetched" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: server file names that escape the target are refused, nothing written" {
    for repo in evil abs; do
        run_split "$FETCH" "org/$repo"
        assert_failure 1
        grep -q "error: the hub listed an unsafe file name" "$BATS_TEST_TMPDIR/err"
        run_split "$FETCH" --local_dir "$BATS_TEST_TMPDIR/ld/x/y" "org/$repo"
        assert_failure 1
    done
    grep -q "'/tmp/sw-fetch-abs-evil.txt'" "$BATS_TEST_TMPDIR/err"
    [ -z "$(find "$BATS_TEST_TMPDIR" -name 'evil.txt' -o -name 'sw-fetch-abs-evil.txt')" ]
    [ ! -e /tmp/sw-fetch-abs-evil.txt ]
    [ ! -e "$HF_HOME/hub/models--org--evil/blobs" ]
}

@test "fetch: a symlink inside --local_dir is not followed out of it" {
    mkdir -p "$BATS_TEST_TMPDIR/plain" "$BATS_TEST_TMPDIR/outside"
    ln -s "$BATS_TEST_TMPDIR/outside" "$BATS_TEST_TMPDIR/plain/sub"
    run_split "$FETCH" --local_dir "$BATS_TEST_TMPDIR/plain" org/tiny
    assert_failure 1
    grep -q "plain/sub' is a symbolic link: refusing to write through it" "$BATS_TEST_TMPDIR/err"
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/outside")" ]
}

@test "fetch: gated repo errors say what to do; the right token works and stays off the CDN" {
    reset_mock
    run_split "$FETCH" org/gated
    assert_failure 1
    grep -q "error: model org/gated is gated (HTTP 401): accept its conditions on the hub's page for it (http://127.0.0.1:$PORT/org/gated), then pass a token with read access (--token, HF_TOKEN" "$BATS_TEST_TMPDIR/err"
    [ "$(err | wc -l)" -eq 1 ]
    run_split "$FETCH" --token hf_wrong org/gated
    assert_failure 1
    grep -q "is gated and the token from --token is not granted access (HTTP 403)" "$BATS_TEST_TMPDIR/err"
    refute_output --partial hf_wrong
    ! grep -q hf_wrong "$BATS_TEST_TMPDIR/err"
    run_split env HF_TOKEN=hf_good_token "$FETCH" org/gated
    assert_success
    same_tree "$REPOS/models/org/gated" "$(out)"
    [ "$(stat_of cdn)" -ge 1 ] && [ "$(stat_of auth_on_cdn)" -eq 0 ]
    # The token file huggingface_hub's login writes.
    rm -rf "$HF_HOME/hub"
    mkdir -p "$HF_HOME" && echo hf_good_token > "$HF_HOME/token"
    run "$FETCH" -q org/gated
    assert_success
}

@test "fetch: offline mode resolves from the cache only, and says what is missing" {
    run "$FETCH" -q org/tiny
    assert_success
    snap="$output"
    # No hub at all: a closed port.
    export HF_ENDPOINT="http://127.0.0.1:1"
    run_split env HF_HUB_OFFLINE=1 "$FETCH" org/tiny
    assert_success
    [ "$(out)" = "$snap" ]
    run_split "$FETCH" --offline org/tiny config.json
    assert_success
    run_split env HF_HUB_OFFLINE=1 "$FETCH" org/gated
    assert_failure 1
    grep -q "model org/gated (revision main) is not in the cache '$HF_HOME/hub', and offline mode (HF_HUB_OFFLINE=1 or --offline) allows no download" "$BATS_TEST_TMPDIR/err"
    # A snapshot missing a file the tree cache lists is incomplete.
    rm "$snap/sub/readme.txt"
    run_split env HF_HUB_OFFLINE=1 "$FETCH" org/tiny
    assert_failure 1
    grep -q "the cached snapshot misses 1 of the requested files ('sub/readme.txt')" "$BATS_TEST_TMPDIR/err"
    run_split env HF_HUB_OFFLINE=1 "$FETCH" --exclude 'sub/' org/tiny
    assert_success
}

@test "fetch: with the hub out of reach, a cached snapshot is used with a warning" {
    reset_mock
    run "$FETCH" -q org/tiny
    assert_success
    snap="$output"
    run_split env HF_ENDPOINT=http://127.0.0.1:1 "$FETCH" --max_retries 0 org/tiny
    assert_success
    [ "$(out)" = "$snap" ]
    grep -q "warning: model org/tiny: cannot reach http://127.0.0.1:1/api/models/org/tiny/revision/main" "$BATS_TEST_TMPDIR/err"
    run_split env HF_ENDPOINT=http://127.0.0.1:1 "$FETCH" --max_retries 0 org/slow
    assert_failure 1
    grep -q "and no usable cached copy" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: revisions: a commit id works, an unknown revision is an error" {
    run "$FETCH" -q org/tiny
    assert_success
    commit="$(basename "$output")"
    rm -rf "$HF_HOME"
    run_split "$FETCH" --revision "$commit" org/tiny
    assert_success
    [ "$(basename "$(out)")" = "$commit" ]
    [ ! -e "$HF_HOME/hub/models--org--tiny/refs/$commit" ]
    run_split "$FETCH" --revision v9 org/tiny
    assert_failure 1
    grep -q "error: model org/tiny: revision not found (HTTP 404)" "$BATS_TEST_TMPDIR/err"
    run_split "$FETCH" org/no-such-repo
    assert_failure 1
    grep -q "model org/no-such-repo: not found, or private and needs authentication (HTTP 401)" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: datasets (HF) and the ModelScope API" {
    reset_mock
    run_split "$FETCH" --repo_type dataset org/data
    assert_success
    [[ "$(out)" == "$HF_HOME/hub/datasets--org--data/snapshots/"* ]]
    same_tree "$REPOS/datasets/org/data" "$(out)"
    run_split "$FETCH" --hub modelscope org/tiny
    assert_success
    [[ "$(out)" =~ ^$MODELSCOPE_CACHE/sw-hub/models--org--tiny/snapshots/[0-9a-f]{40}$ ]]
    same_tree "$REPOS/models/org/tiny" "$(out)"
    [ -f "$MODELSCOPE_CACHE/sw-hub/models--org--tiny/refs/master" ]
    [ "$(stat_of ms_file)" -eq 5 ]
    run_split env USE_HF=0 "$FETCH" --repo_type dataset org/data
    assert_success
    [[ "$(out)" == "$MODELSCOPE_CACHE/sw-hub/datasets--org--data/snapshots/"* ]]
    same_tree "$REPOS/datasets/org/data" "$(out)"
    run_split "$FETCH" --use_hf false org/corrupt
    assert_failure 1
    grep -q "'bad.bin': the downloaded bytes do not match the sha256" "$BATS_TEST_TMPDIR/err"
}

@test "fetch: usage errors exit 2" {
    run_split "$FETCH"
    assert_failure 2
    run_split "$FETCH" ../etc/passwd
    assert_failure 2
    grep -q "is not a repo id" "$BATS_TEST_TMPDIR/err"
    run_split "$FETCH" --revision ../x org/tiny
    assert_failure 2
    run_split "$FETCH" --max_workrs 3 org/tiny
    assert_failure 2
    grep -q "did you mean 'max_workers'" "$BATS_TEST_TMPDIR/err"
    run "$FETCH" --help
    assert_success
    assert_output --partial "--local_dir"
}

hf_or_skip() {
    python3 -c 'import huggingface_hub' 2>/dev/null ||
        skip "huggingface_hub not installed (pip install huggingface_hub)"
}

@test "interop: huggingface_hub opens sw-fetch's cache offline and gets the same files" {
    hf_or_skip
    run "$FETCH" -q org/many
    assert_success
    snap="$output"
    run "$FETCH" -q org/tiny
    assert_success
    for repo in org/many org/tiny; do
        run env HF_HUB_OFFLINE=1 python3 "$HUBTOOL" hf-snapshot "$repo" --offline
        assert_success
        [ "${lines[0]}" = "$(ls -d "$HF_HOME"/hub/models--${repo/\//--}/snapshots/*)" ]
        (cd "${lines[0]}" && find -L . -type f | sort | sed 's|^\./||' | while read -r f; do
            echo "$(sha256sum "$f" | cut -d' ' -f1) $f"; done) | sort > "$BATS_TEST_TMPDIR/want"
        printf '%s\n' "${lines[@]:1}" | sort > "$BATS_TEST_TMPDIR/got"
        diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
    done
    same_tree "$REPOS/models/org/many" "$snap"
}

@test "interop: sw-fetch uses a cache huggingface_hub wrote (offline, and online without transfers)" {
    reset_mock
    hf_or_skip
    run python3 "$HUBTOOL" hf-snapshot org/tiny
    assert_success
    hf_snap="${lines[0]}"
    run env HF_HUB_OFFLINE=1 "$FETCH" org/tiny
    assert_success
    [ "$output" = "$hf_snap" ]
    gets="$(stat_of file_get)"
    run_split "$FETCH" org/tiny
    assert_success
    [ "$(out)" = "$hf_snap" ]
    [ "$(stat_of file_get)" = "$gets" ]
    grep -q "0 files fetched (0 bytes), 0 linked, 5 already in place" "$BATS_TEST_TMPDIR/err"
    run "$FETCH" -q --verify org/tiny
    assert_success
    # A --local_dir huggingface_hub filled is recognised from its metadata too.
    run python3 "$HUBTOOL" hf-snapshot org/tiny --local-dir "$BATS_TEST_TMPDIR/plain"
    assert_success
    gets="$(stat_of file_get)"
    run "$FETCH" -q --local_dir "$BATS_TEST_TMPDIR/plain" org/tiny
    assert_success
    [ "$(stat_of file_get)" = "$gets" ]
}

@test "interop: huggingface_hub sees sw-fetch's --local_dir as complete (no download)" {
    reset_mock
    hf_or_skip
    run "$FETCH" -q --local_dir "$BATS_TEST_TMPDIR/plain" org/tiny
    assert_success
    gets="$(stat_of file_get)"
    run python3 "$HUBTOOL" hf-snapshot org/tiny --local-dir "$BATS_TEST_TMPDIR/plain"
    assert_success
    [ "$(stat_of file_get)" = "$gets" ]
}
