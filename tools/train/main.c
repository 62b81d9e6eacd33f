/* sw-train — train a decoder on an sws stream; see tools/train/README.md. */
#include "train.h"

#include "sw_io.h"
#include "sw_log.h"

int main(int argc, char **argv) {
    sw_log_init("sw-train");
    sw_io_ignore_sigpipe();
    return sw_train_main(argc, argv);
}
