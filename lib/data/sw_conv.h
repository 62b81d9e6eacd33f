/* sw_conv — the one conversation model every dataset format normalises into.
 *
 * A conversation is an optional system prompt and a list of turns (user, assistant, tool), plus
 * what preference and KTO training add: the rejected final answer (DPO family: the chosen answer
 * is the last assistant turn) and a desirability label (KTO). Plain pre-training text is a
 * conversation whose `text` is set and that has no turns. Chat templates (sw_template.h) render
 * this struct; dataset readers (sw_dataset.h) fill it. All strings are NUL-terminated UTF-8 owned
 * by the struct (malloc'ed), so a conversation outlives the JSON row it came from. */
#ifndef SW_CONV_H
#define SW_CONV_H

#include <stddef.h>

enum sw_role { SW_ROLE_USER = 0, SW_ROLE_ASSISTANT, SW_ROLE_TOOL, SW_ROLE_SYSTEM };

/* One tool call an assistant turn makes (OpenAI-style messages[].tool_calls[]). */
struct sw_tool_call {
    char *name;      /* function name */
    char *arguments; /* the arguments as JSON text (an object serialised, or the string given) */
};

struct sw_turn {
    enum sw_role role; /* SW_ROLE_SYSTEM only for a system message that is not the first one */
    char *content;     /* never NULL ("" when the row had none) */
    char *reasoning;   /* assistant reasoning_content, or NULL when the row gave none */
    struct sw_tool_call *tool_calls;
    size_t n_tool_calls;
    int loss; /* the row's per-message "loss" override: -1 unset, 0 or 1 (ms-swift) */
};

/* KTO label values. */
enum { SW_KTO_NONE = -1, SW_KTO_UNDESIRABLE = 0, SW_KTO_DESIRABLE = 1 };

struct sw_conv {
    char *system;          /* system prompt from the row, or NULL (then --system / default) */
    struct sw_turn *turns; /* conversation order */
    size_t n_turns, cap_turns;
    char *rejected; /* rejected final assistant answer (preference data), or NULL */
    int kto_label;  /* SW_KTO_NONE, or 0/1 */
    char *text;     /* plain pre-training text (then n_turns == 0), or NULL */
};

/* Zero a conversation (kto_label = SW_KTO_NONE). */
void sw_conv_init(struct sw_conv *c);
/* Free every string and turn; c is left initialised (reusable). Accepts a zeroed c. */
void sw_conv_release(struct sw_conv *c);

/* Append a turn copying content (NULL is stored as ""). Returns 0 or SW_ENOMEM. The new turn has
 * no reasoning and no tool calls; set them through sw_conv_last(). */
int sw_conv_add(struct sw_conv *c, enum sw_role role, const char *content);
/* Like sw_conv_add for content of length len (need not be NUL-terminated). */
int sw_conv_add_n(struct sw_conv *c, enum sw_role role, const char *content, size_t len);
/* The last turn, or NULL when there is none. */
struct sw_turn *sw_conv_last(struct sw_conv *c);
/* Append a tool call (name and arguments copied) to turn t. Returns 0 or SW_ENOMEM. */
int sw_turn_add_tool_call(struct sw_turn *t, const char *name, const char *arguments);

/* Replace *slot with a copy of s (NULL allowed). Returns 0 or SW_ENOMEM. */
int sw_conv_set_str(char **slot, const char *s);

/* "user", "assistant", "tool", "system". */
const char *sw_role_name(enum sw_role r);

/* Index of the last user turn, or -1 when there is none (the start of the "last round"). */
long sw_conv_last_user(const struct sw_conv *c);

/* Deep copy of src into dst (dst is overwritten without being released). Returns 0 or
 * SW_ENOMEM (dst is then released). */
int sw_conv_copy(struct sw_conv *dst, const struct sw_conv *src);

#endif
