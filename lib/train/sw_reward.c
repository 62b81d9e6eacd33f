/* sw_reward — accuracy and format rewards, and the reward plugin process (see sw_reward.h).
 *
 * The plugin talks over two pipes. Lines are written without blocking while answers are read
 * (poll on both ends), so a plugin that answers as it reads and one that reads everything first
 * both work, whatever the pipe buffer sizes. SIGPIPE is ignored while a plugin is open: a plugin
 * that died shows up as EPIPE / EOF and is reported with its exit status. The plugin runs in its
 * own process group, killed as a whole when it is stopped (a shell's children included). */

#include "sw_reward.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_metrics.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- answers ------------------------------------------------------------------------------- */

/* Keep s[0..n) minus commas and spaces, stripped of surrounding whitespace (Python's
 * .replace(',', '').replace(' ', '').strip()). */
static void clean_into(const char *s, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        if (s[i] != ',' && s[i] != ' ') out[k++] = s[i];
    out[k] = 0;
    size_t a = 0;
    while (out[a] && isspace((unsigned char)out[a]))
        a++;
    while (k > a && isspace((unsigned char)out[k - 1]))
        k--;
    memmove(out, out + a, k - a);
    out[k - a] = 0;
}

void sw_reward_extract_answer(const char *text, char *out, size_t cap) {
    out[0] = 0;
    size_t len = strlen(text);
    const char *s = len > 500 ? text + len - 500 : text; /* ms-swift: text[-500:] (characters) */
    size_t n = strlen(s);
    /* the last \boxed{X} with X a non-empty run without '}' */
    const char *hit = NULL;
    size_t hn = 0;
    for (const char *p = s; (p = strstr(p, "\\boxed{")) != NULL; p++) {
        const char *b = p + 7, *e = b;
        while (*e && *e != '}')
            e++;
        if (*e == '}' && e > b) hit = b, hn = (size_t)(e - b);
    }
    if (hit) {
        clean_into(hit, hn, out, cap);
        return;
    }
    /* the last "####\s*([-\d,.\s]+)" */
    for (const char *p = s; (p = strstr(p, "####")) != NULL; p++) {
        const char *b = p + 4;
        while (*b && isspace((unsigned char)*b))
            b++;
        /* \s* is greedy but gives back: the class includes \s, so the run starts at p + 4 */
        const char *e = p + 4;
        while (*e && (isdigit((unsigned char)*e) || *e == '-' || *e == ',' || *e == '.' ||
                      isspace((unsigned char)*e)))
            e++;
        if (e > b) hit = p + 4, hn = (size_t)(e - (p + 4));
    }
    if (hit) {
        clean_into(hit, hn, out, cap);
        return;
    }
    /* sw: the last number -?\d[\d,]*(\.\d+)? of the whole text */
    const char *last = NULL;
    size_t ln = 0;
    for (size_t i = 0; i < len;) {
        if (isdigit((unsigned char)text[i])) {
            size_t a = i;
            if (a > 0 && text[a - 1] == '-') a--;
            while (i < len && (isdigit((unsigned char)text[i]) || text[i] == ','))
                i++;
            if (i + 1 < len && text[i] == '.' && isdigit((unsigned char)text[i + 1])) {
                i++;
                while (i < len && isdigit((unsigned char)text[i]))
                    i++;
            }
            last = text + a, ln = i - a;
        } else {
            i++;
        }
    }
    (void)n;
    if (last) clean_into(last, ln, out, cap);
}

static int parse_num(const char *s, double *v) {
    if (!*s) return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == 0 && errno == 0;
}

double sw_reward_accuracy(const char *completion, const char *solution) {
    char a[512], b[512];
    sw_reward_extract_answer(completion ? completion : "", a, sizeof a);
    sw_reward_extract_answer(solution ? solution : "", b, sizeof b);
    if (!a[0] || !b[0]) return 0.0;
    double x, y;
    if (parse_num(a, &x) && parse_num(b, &y)) return fabs(x - y) < 1e-5 ? 1.0 : 0.0;
    return strcmp(a, b) == 0 ? 1.0 : 0.0;
}

/* ms-swift's Format: re.match(r'^<think>.*?</think>\s*<answer>.*?</answer>(?![\s\S])', c,
 * re.DOTALL): c starts with <think>, ends with </answer>, and some </think> is followed by
 * whitespace and an <answer> that opens before that final </answer>. */
double sw_reward_format(const char *c) {
    size_t n = strlen(c);
    static const char th[] = "<think>", the[] = "</think>", an[] = "<answer>", ane[] = "</answer>";
    if (n < 7 + 8 + 8 + 9 || strncmp(c, th, 7) != 0 || strcmp(c + n - 9, ane) != 0) return 0.0;
    for (const char *p = c + 7; (p = strstr(p, the)) != NULL; p++) {
        const char *q = p + 8;
        while (*q && isspace((unsigned char)*q))
            q++;
        if (strncmp(q, an, 8) == 0 && (size_t)(q + 8 - c) <= n - 9) return 1.0;
    }
    return 0.0;
}

/* ---- the plugin process ---------------------------------------------------------------------- */

struct sw_reward_plugin {
    char *cmd;
    pid_t pid;
    int in, out; /* our ends: its stdin (write), its stdout (read) */
    double timeout;
    char *buf; /* partial answer line */
    size_t len, cap;
    int dead;
    struct sigaction old_pipe;
};

int sw_reward_plugin_open(const char *cmd, double timeout_s, struct sw_reward_plugin **out) {
    *out = NULL;
    int a[2], b[2];
    if (pipe2(a, O_CLOEXEC) != 0)
        return sw_err_set(SW_EIO, "reward plugin: pipe: %s", strerror(errno));
    if (pipe2(b, O_CLOEXEC) != 0) {
        close(a[0]), close(a[1]);
        return sw_err_set(SW_EIO, "reward plugin: pipe: %s", strerror(errno));
    }
    struct sw_reward_plugin *p = calloc(1, sizeof *p);
    if (!p || !(p->cmd = strdup(cmd))) {
        free(p);
        close(a[0]), close(a[1]), close(b[0]), close(b[1]);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(a[0]), close(a[1]), close(b[0]), close(b[1]);
        free(p->cmd), free(p);
        return sw_err_set(SW_EIO, "reward plugin '%s': fork: %s", cmd, strerror(e));
    }
    if (pid == 0) { /* the child: stdin from a, stdout to b, stderr stays ours; its own process
                       group, so stopping it stops what it started too */
        setpgid(0, 0);
        dup2(a[0], 0);
        dup2(b[1], 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no window where a kill of the group misses it */
    close(a[0]);
    close(b[1]);
    p->pid = pid;
    p->in = a[1];
    p->out = b[0];
    p->timeout = timeout_s > 0 ? timeout_s : 60;
    fcntl(p->in, F_SETFL, fcntl(p->in, F_GETFL) | O_NONBLOCK);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, &p->old_pipe);
    *out = p;
    sw_info("reward plugin started: %s (pid %d)", cmd, (int)pid);
    return 0;
}

/* How the plugin ended, for a message ("exited with status 3", "killed by signal 9", ...);
 * waits up to a second for it. */
static void exit_status(struct sw_reward_plugin *p, char *buf, size_t cap) {
    int st;
    for (int i = 0; i < 100; i++) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            kill(-p->pid, SIGKILL); /* what it left running */
            p->pid = 0;
            if (WIFEXITED(st))
                snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
            else if (WIFSIGNALED(st))
                snprintf(buf, cap, "was killed by signal %d", WTERMSIG(st));
            else
                snprintf(buf, cap, "ended");
            return;
        }
        if (r < 0) break;
        usleep(10000);
    }
    snprintf(buf, cap, "closed its output");
}

static void stop(struct sw_reward_plugin *p) {
    if (p->in >= 0) close(p->in);
    if (p->out >= 0) close(p->out);
    p->in = p->out = -1;
    if (p->pid > 0) {
        int st;
        for (int i = 0; i < 20 && waitpid(p->pid, &st, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(p->pid, &st, WNOHANG) == 0) {
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
        } else {
            kill(-p->pid, SIGKILL); /* what the plugin left running */
        }
        p->pid = 0;
    }
    p->dead = 1;
}

/* The JSON line of one item (malloc'ed, with '\n'). */
static char *item_line(const struct sw_reward_item *it) {
    json_t *o = it->row && json_is_object(it->row) ? json_deep_copy(it->row) : json_object();
    if (!o) return NULL;
    json_object_set_new(o, "prompt", json_string(it->prompt ? it->prompt : ""));
    json_object_set_new(o, "completion", json_string(it->completion ? it->completion : ""));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *r = realloc(s, n + 2);
    if (!r) {
        free(s);
        return NULL;
    }
    r[n] = '\n', r[n + 1] = 0;
    return r;
}

static int fail(struct sw_reward_plugin *p, const struct sw_reward_item *it, int k, const char *why,
                const char *detail) {
    int rc = sw_err_set(SW_EIO, "reward plugin '%s' %s%s while scoring %s (completion %d)", p->cmd,
                        why, detail ? detail : "", it->where ? it->where : "a row", k);
    stop(p);
    return rc;
}

int sw_reward_plugin_score(struct sw_reward_plugin *p, const struct sw_reward_item *items, int n,
                           double *out) {
    if (p->dead) return sw_err_set(SW_ESTATE, "reward plugin '%s' is stopped", p->cmd);
    int wi = 0, ri = 0; /* next item to write, next answer to read */
    char *line = NULL;
    size_t loff = 0, llen = 0;
    double deadline = sw_now_seconds() + p->timeout;
    int rc = 0;
    while (ri < n) {
        if (!line && wi < n) {
            if (!(line = item_line(&items[wi]))) return sw_err_set(SW_ENOMEM, "out of memory");
            loff = 0, llen = strlen(line);
        }
        struct pollfd fds[2] = {{.fd = p->out, .events = POLLIN},
                                {.fd = line ? p->in : -1, .events = POLLOUT}};
        double left = deadline - sw_now_seconds();
        if (left <= 0) {
            char d[64];
            snprintf(d, sizeof d, " within %g s", p->timeout);
            rc = fail(p, &items[ri], ri, "gave no answer", d);
            break;
        }
        int pr = poll(fds, 2, (int)fmin(left * 1000 + 1, 1e9));
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) {
            rc = sw_err_set(SW_EIO, "reward plugin '%s': poll: %s", p->cmd, strerror(errno));
            stop(p);
            break;
        }
        if (line && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(p->in, line + loff, llen - loff);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                char d[64];
                exit_status(p, d, sizeof d);
                rc = fail(p, &items[wi], wi, d, NULL);
                break;
            }
            if (w > 0 && (loff += (size_t)w) == llen) {
                free(line);
                line = NULL;
                wi++;
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (p->len + 256 > p->cap) {
                size_t nc = p->cap ? p->cap * 2 : 1024;
                char *b = realloc(p->buf, nc);
                if (!b) {
                    rc = sw_err_set(SW_ENOMEM, "out of memory");
                    break;
                }
                p->buf = b, p->cap = nc;
            }
            ssize_t r = read(p->out, p->buf + p->len, p->cap - p->len - 1);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                char d[64];
                exit_status(p, d, sizeof d);
                rc = fail(p, &items[ri], ri, d, NULL);
                break;
            }
            p->len += (size_t)r;
            char *nl;
            while (ri < n && (nl = memchr(p->buf, '\n', p->len)) != NULL) {
                *nl = 0;
                char *s = p->buf, *end;
                while (isspace((unsigned char)*s))
                    s++;
                errno = 0;
                double v = strtod(s, &end);
                while (isspace((unsigned char)*end))
                    end++;
                if (end == s || *end || errno || !isfinite(v)) {
                    char d[96];
                    snprintf(d, sizeof d, " '%.60s'", s);
                    rc = fail(p, &items[ri], ri, "answered, not a finite number:", d);
                    break;
                }
                out[ri++] = v;
                size_t used = (size_t)(nl + 1 - p->buf);
                memmove(p->buf, nl + 1, p->len - used);
                p->len -= used;
                deadline = sw_now_seconds() + p->timeout; /* the clock is per answer */
            }
            if (rc < 0) break;
        }
    }
    free(line);
    return rc;
}

void sw_reward_plugin_close(struct sw_reward_plugin *p) {
    if (!p) return;
    stop(p);
    sigaction(SIGPIPE, &p->old_pipe, NULL);
    free(p->buf);
    free(p->cmd);
    free(p);
}
