/* sw_signal — SIGINT/SIGTERM to a polled flag (see sw_signal.h for the contract). */
#include "sw_signal.h"

#include "sw_err.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending_sig;
static struct sigaction old_int, old_term;
static int installed;

static void on_signal(int sig) {
    if (pending_sig) {
        /* Second signal: the user wants out now. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        raise(sig);
        return;
    }
    pending_sig = sig;
}

int sw_signal_install(void) {
    if (installed) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking read returns EINTR so the loop can stop */
    if (sigaction(SIGINT, &sa, &old_int) != 0 || sigaction(SIGTERM, &sa, &old_term) != 0)
        return sw_err_set(SW_EIO, "cannot install signal handlers: %s", strerror(errno));
    installed = 1;
    return 0;
}

void sw_signal_restore(void) {
    if (!installed) return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    installed = 0;
}

int sw_signal_pending(void) {
    return (int)pending_sig;
}

void sw_signal_clear(void) {
    pending_sig = 0;
}

int sw_signal_exit_code(int sig) {
    return sig > 0 ? 128 + sig : 1;
}
