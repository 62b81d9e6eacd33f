/* sw_log — leveled diagnostics on stderr, one line per call, safe from several threads. */
#include "sw_log.h"

#include "sw_err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_tool = "sw";
static enum sw_log_level log_level = SW_LOG_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int log_partial_line;

void sw_log_set_partial_line(int active) {
    log_partial_line = active;
}

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

int sw_log_parse_level(const char *s, enum sw_log_level *out) {
    for (int i = 0; i <= SW_LOG_TRACE; i++) {
        if (strcmp(s, level_names[i]) == 0 || (s[0] == '0' + i && s[1] == '\0')) {
            *out = (enum sw_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = SW_LOG_WARN;
        return 0;
    }
    return sw_err_set(SW_EINVAL,
                      "SW_LOG: unknown level '%s' (use error, warn, info, debug or trace)", s);
}

void sw_log_init(const char *tool) {
    log_tool = tool;
    const char *env = getenv("SW_LOG");
    enum sw_log_level lv;
    if (env && *env && sw_log_parse_level(env, &lv) == 0) log_level = lv;
}

const char *sw_log_tool(void) {
    return log_tool;
}
void sw_log_set_level(enum sw_log_level level) {
    log_level = level;
}
enum sw_log_level sw_log_get_level(void) {
    return log_level;
}

void sw_logv(enum sw_log_level level, const char *fmt, va_list ap) {
    if (level > log_level) return;
    static const char *const prefix[] = {"error: ", "warning: ", "", "debug: ", "trace: "};
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "%s%s: %s%s\n", log_partial_line ? "\r\033[K" : "", log_tool, prefix[level],
            line);
    pthread_mutex_unlock(&log_mu);
}

void sw_log(enum sw_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sw_logv(level, fmt, ap);
    va_end(ap);
}

int sw_log_report(int code) {
    if (code < 0 && code != SW_EPIPE) {
        const char *m = sw_err_msg();
        sw_log(SW_LOG_ERROR, "%s", m[0] ? m : sw_strerror(code));
    }
    return sw_err_exit_code(code);
}
