/* sw_log — the one logger for diagnostics on stderr.
 *
 * Levels: error < warn < info < debug < trace. The default is info; SW_LOG=<level> in the
 * environment or -q/-v on a tool's command line changes it. Messages look like git's:
 * "sw-pack: warning: skipped 3 bad rows". stdout is never written here (it is data). */
#ifndef SW_LOG_H
#define SW_LOG_H

#include <stdarg.h>

enum sw_log_level { SW_LOG_ERROR = 0, SW_LOG_WARN, SW_LOG_INFO, SW_LOG_DEBUG, SW_LOG_TRACE };

/* Name printed before messages ("sw-pack"); the pointer is kept, pass a literal. Also reads SW_LOG.
 */
void sw_log_init(const char *tool);
const char *sw_log_tool(void);
void sw_log_set_level(enum sw_log_level level);
enum sw_log_level sw_log_get_level(void);
/* Parse "error|warn|info|debug|trace" (or 0..4); returns 0 or SW_EINVAL. */
int sw_log_parse_level(const char *s, enum sw_log_level *out);

void sw_log(enum sw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sw_logv(enum sw_log_level level, const char *fmt, va_list ap);

#define sw_error(...) sw_log(SW_LOG_ERROR, __VA_ARGS__)
#define sw_warn(...) sw_log(SW_LOG_WARN, __VA_ARGS__)
#define sw_info(...) sw_log(SW_LOG_INFO, __VA_ARGS__)
#define sw_debug(...) sw_log(SW_LOG_DEBUG, __VA_ARGS__)

/* A progress bar is drawn on the current stderr line (no newline yet): log lines first clear it
 * so messages never run into the bar; the bar redraws itself on its next update. */
void sw_log_set_partial_line(int active);

/* Print the current sw_err message as "sw-<tool>: error: <msg>" and return the exit status
 * for code (see sw_err_exit_code). SW_EPIPE prints nothing. */
int sw_log_report(int code);

#endif
