/* sw_signal — graceful interruption of long-running loops (training, serving).
 *
 * sw_signal_install() makes SIGINT and SIGTERM set a flag instead of killing the process; the
 * loop polls sw_signal_pending() at safe points (between optimizer steps), saves its state and
 * returns SW_EINTR; the tool then exits with sw_signal_exit_code(): 128 + the signal number
 * (130 for SIGINT, 143 for SIGTERM), the shell convention for "terminated by signal".
 * A second signal of either kind while the first is pending restores the default action and
 * re-raises it: the process dies at once (the user insisted; checkpoints are written atomically,
 * so a half-written one is never mistaken for a complete one).
 * The handler only stores to a volatile sig_atomic_t and calls sigaction/raise, which are
 * async-signal-safe. SA_RESTART is NOT set: a read blocked on an idle producer returns EINTR, and
 * readers given sw_signal_pending as their interrupt check (sw_stream_opts.interrupted) stop
 * with SW_EINTR instead of waiting for data that may never come. Regular-file I/O is not
 * interrupted by signals, so checkpoint writes are unaffected. */
#ifndef SW_SIGNAL_H
#define SW_SIGNAL_H

/* Install the handlers for SIGINT and SIGTERM (idempotent). Returns 0 or SW_EIO. */
int sw_signal_install(void);
/* Put back the dispositions that were there before install. */
void sw_signal_restore(void);
/* The first signal received since install/clear (SIGINT or SIGTERM), or 0. */
int sw_signal_pending(void);
/* Forget a pending signal (tests; a loop that decided to continue). */
void sw_signal_clear(void);
/* Exit status for a received signal: 128 + sig (130 SIGINT, 143 SIGTERM); 1 for sig <= 0. */
int sw_signal_exit_code(int sig);

#endif
