/* sw-serve — an OpenAI-compatible server (HTTP and ZeroMQ) over sw's inference engine; see
 * tools/serve/README.md and docs/serve.md. The work is in serve.c and its neighbours (serve.h). */
#include "sw_io.h"
#include "sw_log.h"

int sw_serve_main(int argc, char **argv);

int main(int argc, char **argv) {
    sw_log_init("sw-serve");
    sw_io_ignore_sigpipe();
    return sw_serve_main(argc, argv);
}
