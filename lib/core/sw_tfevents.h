/* sw_tfevents — TensorBoard event files written by hand: the few protobuf messages a scalar
 * needs and the TFRecord framing, so `tensorboard --logdir DIR` (and tbparse, and
 * tensorboard's EventFileLoader) read sw's training curves without a protobuf library.
 *
 * File: a sequence of TFRecords, each
 *     uint64 length (little-endian) | uint32 masked_crc32c(length bytes) |
 *     data[length] | uint32 masked_crc32c(data)
 * with masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8, c = CRC-32C (Castagnoli) of x.
 * Each record is a serialised tensorflow.Event (tensorflow/core/util/event.proto):
 *     Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *               Summary summary = 5; }
 *     Summary { repeated Value value = 1; }
 *     Value   { string tag = 1; float simple_value = 2; }
 * The first record carries file_version "brain.Event:2" (what TensorBoard checks); every
 * scalar is one Event with one Value, as torch.utils.tensorboard's add_scalar writes it. The
 * file is named like torch's SummaryWriter names it:
 *     events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<n>
 * Records are flushed as written, so a running TensorBoard sees them. */
#ifndef SW_TFEVENTS_H
#define SW_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, reflected, init and final xor 0xffffffff) of n bytes, continuing crc
 * (start with 0). crc32c("123456789") == 0xe3069283. */
uint32_t sw_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's masking of a CRC. */
uint32_t sw_crc32c_mask(uint32_t crc);

/* Serialise an Event into buf (cap bytes): wall_time and step always; file_version when not
 * NULL; one summary value (tag, simple_value) when tag is not NULL. Returns the length, or -1
 * when cap is too small. Pure: exposed for tests. */
int sw_tfevents_encode(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                       const char *file_version, const char *tag, float value);
/* Frame data (n bytes) as one TFRecord into out (n + 16 bytes). */
void sw_tfrecord_frame(uint8_t *out, const void *data, size_t n);

struct sw_tfevents;

/* Create dir (mkdir -p) and a new event file in it, and write the file_version record.
 * *out is freed with sw_tfevents_close. Returns 0 or an error naming the path. */
int sw_tfevents_open(const char *dir, struct sw_tfevents **out);
/* Append one scalar (tag, value at step, wall_time in Unix seconds). */
int sw_tfevents_scalar(struct sw_tfevents *w, const char *tag, double value, int64_t step,
                       double wall_time);
/* The file's path (borrowed). */
const char *sw_tfevents_path(const struct sw_tfevents *w);
/* Close. Accepts NULL. */
void sw_tfevents_close(struct sw_tfevents *w);

#endif
