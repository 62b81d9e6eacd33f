/* test_io — atomic output, gzip-transparent whole-file reads, mmap, full reads/writes, paths. */
#include "sw_err.h"
#include "sw_io.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];

static char *tpath(const char *name) {
    static char buf[64][512]; /* a ring: results stay valid for 64 calls */
    static int i;
    i = (i + 1) % 64;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

/* Number of entries in tmpdir/sub whose name contains needle. */
static int count_entries(const char *sub, const char *needle) {
    DIR *d = opendir(sub ? tpath(sub) : tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strstr(e->d_name, needle)) n++;
    }
    closedir(d);
    return n;
}

static int exists(const char *p) {
    return access(p, F_OK) == 0;
}

static void write_raw(const char *p, const void *data, size_t n) {
    FILE *fp = fopen(p, "wb");
    if (fp) {
        fwrite(data, 1, n, fp);
        fclose(fp);
    }
}

/* One gzip member holding data (independent of sw_io: zlib's deflate with a gzip wrapper). */
static size_t gzip_member(const void *data, size_t n, unsigned char *out, size_t cap) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int r = deflate(&zs, Z_FINISH);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    return r == Z_STREAM_END ? len : 0;
}

static void test_atomic(void) {
    const char *p = tpath("out.bin");
    struct sw_atomic_file f;
    int rc = sw_atomic_open(&f, p);
    IS_INT(rc, 0, "atomic_open in an existing folder");
    OK(f.tmp && strncmp(f.tmp, tmpdir, strlen(tmpdir)) == 0 && strstr(f.tmp, "/.out.bin.tmp."),
       "temp file '%s' is a hidden sibling of the target", f.tmp ? f.tmp : "(null)");
    fputs("hello atomic", f.fp);
    fflush(f.fp);
    OK(!exists(p), "target absent before commit");
    IS_INT(count_entries(NULL, ".out.bin.tmp."), 1, "one temp file while writing");
    IS_INT(sw_atomic_commit(&f), 0, "commit");
    OK(f.fp == NULL && f.tmp == NULL && f.path == NULL, "commit releases the struct");
    OK(exists(p), "target present after commit");
    IS_INT(count_entries(NULL, ".tmp."), 0, "no temp file left after commit");
    char *data = NULL;
    size_t len = 0;
    IS_INT(sw_read_file(p, &data, &len, 0), 0, "read back the committed file");
    IS_STR(data, "hello atomic", "committed content");
    free(data);
    struct stat st;
    stat(p, &st);
    IS_INT(st.st_mode & 0777, 0644, "mode is 0666 & ~umask(022), not mkstemp's 0600");

    /* abort leaves nothing, and an existing target is untouched */
    rc = sw_atomic_open(&f, tpath("gone.bin"));
    fputs("never", f.fp);
    sw_atomic_abort(&f);
    OK(rc == 0 && !exists(tpath("gone.bin")), "abort: target never appears");
    IS_INT(count_entries(NULL, ".tmp."), 0, "abort: temp file removed");
    sw_atomic_abort(&f); /* released twice: must be harmless */
    struct sw_atomic_file z;
    memset(&z, 0, sizeof z);
    sw_atomic_abort(&z);
    OK(1, "abort accepts a zeroed and a released struct");

    rc = sw_atomic_open(&f, p);
    fputs("partial", f.fp);
    sw_atomic_abort(&f);
    data = NULL;
    sw_read_file(p, &data, &len, 0);
    IS_STR(data, "hello atomic", "abort over an existing target keeps the old content");
    free(data);

    IS_INT(sw_write_file_atomic(p, "v2", 2), 0, "write_file_atomic replaces a file");
    data = NULL;
    sw_read_file(p, &data, &len, 0);
    OK(data && len == 2 && memcmp(data, "v2", 2) == 0, "replaced content");
    free(data);

    rc = sw_atomic_open(&f, tpath("no/such/dir/x.bin"));
    IS_INT(rc, SW_ENOTFOUND, "atomic_open in a missing folder is SW_ENOTFOUND");
    OK(strstr(sw_err_msg(), "no/such/dir/x.bin") != NULL, "message names the path: %s",
       sw_err_msg());
    OK(f.fp == NULL && f.tmp == NULL, "failed open leaves a released struct");

    /* a relative path without a folder part */
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        IS_INT(sw_write_file_atomic("rel.txt", "r", 1), 0, "atomic write of a bare file name");
        OK(exists(tpath("rel.txt")), "bare name lands in the current folder");
        if (chdir(cwd) != 0) DIAG("chdir back failed");
    }
}

static void test_read_plain(void) {
    char *data = (char *)1;
    size_t len = 99;
    const char *p = tpath("plain.txt");
    write_raw(p, "abc\0def", 7);
    IS_INT(sw_read_file(p, &data, &len, 0), 0, "read plain file");
    OK(len == 7 && memcmp(data, "abc\0def", 7) == 0 && data[7] == '\0',
       "plain content with embedded NUL, NUL-terminated");
    free(data);

    write_raw(tpath("empty"), "", 0);
    IS_INT(sw_read_file(tpath("empty"), &data, &len, 0), 0, "read empty file");
    OK(data && len == 0 && data[0] == '\0', "empty file gives \"\" and len 0");
    free(data);

    write_raw(tpath("one"), "\x1f", 1);
    IS_INT(sw_read_file(tpath("one"), &data, &len, 0), 0, "a lone 0x1f byte is plain data");
    OK(len == 1 && (unsigned char)data[0] == 0x1f, "one byte read");
    free(data);

    char big[100];
    memset(big, 'x', sizeof big);
    write_raw(p, big, sizeof big);
    IS_INT(sw_read_file(p, &data, &len, 100), 0, "max_len equal to the size is fine");
    free(data);
    data = (char *)1;
    IS_INT(sw_read_file(p, &data, &len, 99), SW_ERANGE, "one byte over max_len is SW_ERANGE");
    OK(data == NULL && len == 0, "outputs cleared on error");
    OK(strstr(sw_err_msg(), "plain.txt") != NULL, "message names the file: %s", sw_err_msg());

    IS_INT(sw_read_file(tpath("missing"), &data, &len, 0), SW_ENOTFOUND, "missing file");
    IS_INT(sw_read_file(tmpdir, &data, &len, 0), SW_EIO, "a folder is SW_EIO");
    OK(strstr(sw_err_msg(), "Is a directory") != NULL, "folder message: %s", sw_err_msg());

    /* 3 MiB of pseudo-random bytes: exercises buffer growth past the first chunk */
    size_t n = 3u << 20;
    unsigned char *r = malloc(n);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++)
        r[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 24);
    write_raw(p, r, n);
    IS_INT(sw_read_file(p, &data, &len, 0), 0, "read a 3 MiB file");
    OK(len == n && memcmp(data, r, n) == 0, "3 MiB content identical");
    free(data);
    free(r);
}

static void test_read_gzip(void) {
    unsigned char gz[8192], gz2[8192];
    size_t n1 = gzip_member("hello ", 6, gz, sizeof gz);
    size_t n2 = gzip_member("world", 5, gz2, sizeof gz2);
    OK(n1 > 0 && n2 > 0, "made gzip members with zlib");
    unsigned char both[16384];
    memcpy(both, gz, n1);
    memcpy(both + n1, gz2, n2);
    const char *p = tpath("x.gz");
    char *data;
    size_t len;

    write_raw(p, gz, n1);
    IS_INT(sw_read_file(p, &data, &len, 0), 0, "read one gzip member");
    OK(len == 6 && strcmp(data, "hello ") == 0, "gzip content inflated");
    free(data);

    write_raw(p, both, n1 + n2);
    IS_INT(sw_read_file(p, &data, &len, 0), 0, "read two gzip members");
    IS_STR(data, "hello world", "both members concatenated");
    free(data);

    memset(both + n1 + n2, 0, 512);
    write_raw(p, both, n1 + n2 + 512);
    IS_INT(sw_read_file(p, &data, &len, 0), 0, "zero padding after the last member is accepted");
    free(data);

    memcpy(both + n1 + n2, "junk", 4);
    write_raw(p, both, n1 + n2 + 4);
    IS_INT(sw_read_file(p, &data, &len, 0), SW_EFORMAT, "trailing garbage is SW_EFORMAT");
    DIAG("%s", sw_err_msg());

    write_raw(p, both, n1 + n2 - 3);
    IS_INT(sw_read_file(p, &data, &len, 0), SW_ETRUNC, "gzip cut short is SW_ETRUNC");
    OK(strstr(sw_err_msg(), "x.gz") && strstr(sw_err_msg(), "member 2"),
       "truncation message names file and member: %s", sw_err_msg());

    unsigned char bad[64];
    memcpy(bad, gz, n1);
    bad[10] ^= 0xff; /* the deflate data right after the 10-byte header */
    bad[11] ^= 0xff;
    write_raw(p, bad, n1);
    int rc = sw_read_file(p, &data, &len, 0);
    OK(rc == SW_EFORMAT || rc == SW_ETRUNC, "corrupt deflate data is an error (rc %d: %s)", rc,
       sw_err_msg());
    if (rc == 0) free(data);

    /* a 16 MiB run of zeros compresses to ~16 KiB; max_len must stop it while inflating */
    size_t zn = 16u << 20;
    unsigned char *zeros = calloc(1, zn);
    size_t cap = 1u << 20;
    unsigned char *bomb = malloc(cap);
    size_t bn = gzip_member(zeros, zn, bomb, cap);
    write_raw(p, bomb, bn);
    IS_INT(sw_read_file(p, &data, &len, 1u << 20), SW_ERANGE,
           "gzip bomb over max_len is SW_ERANGE");
    IS_INT(sw_read_file(p, &data, &len, zn), 0, "same data within max_len");
    OK(len == zn && memcmp(data, zeros, zn) == 0, "16 MiB inflated exactly");
    free(data);
    IS_INT(sw_read_file(p, &data, &len, zn - 1), SW_ERANGE, "max_len one byte short");
    free(zeros);
    free(bomb);

    /* stdin from a pipe fed one byte at a time (the gzip magic arrives split) */
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (size_t i = 0; i < n1 + n2; i++) {
            if (write(fds[1], both + i, 1) != 1) _exit(1);
            if (i < 4) usleep(2000);
        }
        _exit(0);
    }
    close(fds[1]);
    int saved = dup(0);
    dup2(fds[0], 0);
    close(fds[0]);
    rc = sw_read_file("-", &data, &len, 0);
    dup2(saved, 0);
    close(saved);
    waitpid(pid, NULL, 0);
    IS_INT(rc, 0, "read gzip from stdin through a pipe");
    if (rc == 0) {
        IS_STR(data, "hello world", "stdin gzip content");
        free(data);
    }
}

static void test_full(void) {
    char src[5] = "12345", buf[16];
    FILE *fp = fmemopen(src, 5, "rb");
    IS_INT(sw_read_full(fp, buf, 3, "hdr"), 0, "read_full of available bytes");
    IS_INT(sw_read_full(fp, buf, 10, "hdr"), SW_ETRUNC, "short read is SW_ETRUNC");
    IS_STR(sw_err_msg(), "hdr: truncated: expected 10 bytes, got 2", "truncation message");
    IS_INT(sw_read_full(fp, buf, 0, "hdr"), 0, "zero-byte read is fine at EOF");
    fclose(fp);

    sw_io_ignore_sigpipe();
    int fds[2];
    if (pipe(fds) != 0) return;
    close(fds[0]);
    fp = fdopen(fds[1], "wb");
    setvbuf(fp, NULL, _IONBF, 0);
    IS_INT(sw_write_full(fp, "abc", 3, "<stdout>"), SW_EPIPE, "write to a closed pipe is SW_EPIPE");
    fclose(fp);
}

static void test_mmap(void) {
    struct sw_mmap m = {(void *)1, 7};
    write_raw(tpath("empty.map"), "", 0);
    IS_INT(sw_mmap_open(&m, tpath("empty.map")), 0, "mmap of an empty file works");
    OK(m.data == NULL && m.len == 0, "empty mapping is NULL/0");
    sw_mmap_close(&m);
    sw_mmap_close(&m);
    OK(1, "close of an empty mapping, twice");

    write_raw(tpath("m.bin"), "mapped!", 7);
    IS_INT(sw_mmap_open(&m, tpath("m.bin")), 0, "mmap a file");
    OK(m.len == 7 && m.data && memcmp(m.data, "mapped!", 7) == 0, "mapped content");
    sw_mmap_close(&m);
    OK(m.data == NULL && m.len == 0, "close zeroes the struct");

    IS_INT(sw_mmap_open(&m, tpath("nope")), SW_ENOTFOUND, "mmap of a missing file");
    IS_INT(sw_mmap_open(&m, tmpdir), SW_EINVAL, "mmap of a folder is SW_EINVAL");
}

static void test_paths(void) {
    char *j = sw_path_join("a/b", "c.txt");
    IS_STR(j, "a/b/c.txt", "join adds a slash");
    free(j);
    j = sw_path_join("a/b/", "c.txt");
    IS_STR(j, "a/b/c.txt", "join keeps one slash");
    free(j);
    j = sw_path_join("", "c.txt");
    IS_STR(j, "c.txt", "join with an empty folder");
    free(j);

    IS_INT(sw_mkdir_p(tpath("d1/d2//d3")), 0, "mkdir -p of nested folders");
    IS_INT(sw_path_is_dir(tpath("d1/d2/d3")), 1, "nested folder exists");
    IS_INT(sw_mkdir_p(tpath("d1/d2/d3/")), 0, "mkdir -p again (and a trailing slash) is fine");
    write_raw(tpath("d1/file"), "x", 1);
    IS_INT(sw_path_is_dir(tpath("d1/file")), 0, "a file is not a folder");
    OK(sw_mkdir_p(tpath("d1/file/sub")) < 0, "mkdir -p through a file fails: %s", sw_err_msg());
    IS_INT(sw_path_is_dir(tpath("d1/none")), SW_ENOTFOUND, "is_dir of a missing path");
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) DIAG("cleanup of %s failed", tmpdir);
}

int main(void) {
    umask(022);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/sw_test_io.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        OK(0, "mkdtemp: %s", strerror(errno));
        return tap_done();
    }
    test_atomic();
    test_read_plain();
    test_read_gzip();
    test_full();
    test_mmap();
    test_paths();
    cleanup();
    return tap_done();
}
